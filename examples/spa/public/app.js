// The whole SPA: plain browser JavaScript, no build. `oidc` is oidc-client-ts's browser bundle.
const { UserManager, WebStorageStateStore } = window.oidc;

const config = await (await fetch('/config.json')).json();

const userManager = new UserManager({
  authority: config.authority,
  client_id: config.clientId,
  redirect_uri: `${location.origin}/callback`,
  post_logout_redirect_uri: `${location.origin}/signed-out`,
  response_type: 'code', // with PKCE (S256), which oidc-client-ts always uses for code
  // offline_access + prompt=consent: Sesame issues a refresh token, which renews tokens without an iframe.
  scope: 'openid email profile offline_access',
  prompt: 'consent',
  automaticSilentRenew: true, // shortly before the access token expires, with the refresh token
  revokeTokensOnSignout: true,
  revokeTokenTypes: ['refresh_token'],
  // The landing URL carries the one-time token: replace it in the history instead of keeping it.
  redirectMethod: 'replace',
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
});

const $ = (id) => document.getElementById(id);

function show(user, message) {
  $('status').textContent = message ?? (user ? `Signed in as ${user.profile.email ?? user.profile.sub}` : 'Signed out. Open a sign-in link to sign in.');
  $('claims').hidden = !user;
  $('claims').textContent = user ? JSON.stringify(user.profile, null, 2) : '';
  $('renew').hidden = !user;
  $('sign-out').hidden = !user;
}

/** The magic link: `/landing?token=…&email=…` starts the sign-in with the one-time token. */
async function landing() {
  const params = new URLSearchParams(location.search);
  const token = params.get('token');
  const email = params.get('email');
  if (!token || !email) return show(null, 'This link is incomplete.');
  // Nothing is consumed here or on Sesame's page: only the user's click on "Continue" does.
  await userManager.signinRedirect({ extraQueryParams: { one_time_token: token, login_hint: email } });
}

/** Sesame sends the browser back here with a code (or an error such as access_denied). */
async function callback() {
  try {
    await userManager.signinRedirectCallback();
  } catch (error) {
    history.replaceState(null, '', '/');
    return show(null, `Sign-in did not complete: ${error.message}`);
  }
  history.replaceState(null, '', '/');
  show(await userManager.getUser());
}

$('renew').addEventListener('click', async () => {
  const user = await userManager.signinSilent();
  $('renewed').hidden = false;
  $('renewed').textContent = `Tokens renewed at ${new Date().toLocaleTimeString()}; the access token expires in ${user.expires_in} s.`;
  show(user);
});

$('sign-out').addEventListener('click', () => userManager.signoutRedirect());

userManager.events.addSilentRenewError((error) => show(null, `Renewing the session failed: ${error.message}`));

/** Sesame's end-session page sends the browser back here after sign-out. */
async function signedOut() {
  await userManager.signoutRedirectCallback().catch(() => undefined);
  history.replaceState(null, '', '/');
  show(null, 'You are signed out.');
}

if (location.pathname === '/landing') await landing();
else if (location.pathname === '/callback') await callback();
else if (location.pathname === '/signed-out') await signedOut();
else show(await userManager.getUser());

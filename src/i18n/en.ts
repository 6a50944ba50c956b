/**
 * The English messages: the source every other language translates. `{name}`
 * placeholders are filled in (and HTML-escaped by the page templates).
 */
export const en = {
  // Shared
  'common.back': 'Back to the app',
  'common.continue': 'Continue',
  'common.email': 'Email address',
  'common.password': 'Password',
  'common.code': '6-digit code',
  'common.errorCode': 'Error code: {code}',
  'common.reference': 'Reference {reference}',
  'common.or': 'or',
  'common.theApp': 'the app',

  // Sign-in start
  'signIn.title': 'Sign in to {app}',
  'signIn.intro': 'Enter your email address. We will send you a sign-in link.',
  'signIn.introCode': 'Enter your email address. We will send you a sign-in code.',
  'signIn.sendLink': 'Email me a sign-in link',
  'signIn.sendCode': 'Email me a code instead',
  'signIn.sendCodeOnly': 'Email me a code',
  'signIn.usePassword': 'Sign in with a password',
  'signIn.noMethods': 'No sign-in method is turned on. Ask the app’s support.',
  'signIn.register': 'Create an account',
  'signIn.haveAccount': 'Already have an account? Sign in',

  // Check your inbox / code entry
  'sent.title': 'Check your inbox',
  'sent.link': 'We sent a sign-in link to {email}. Open it in this browser, or type the code from the mail here.',
  'sent.code': 'We sent a 6-digit code to {email}. Type it here.',
  'sent.register': 'To finish creating your account, type the 6-digit code we sent to {email}.',
  'sent.reference': 'The mail shows the reference {reference}: if you have several mails, use the one with this reference.',
  'sent.expires': 'The code works for {minutes} minutes.',
  'sent.noMail': 'No mail? Check your spam folder, or send a new one.',
  'sent.resend': 'Send a new mail',
  'sent.otherEmail': 'Use another email address',
  'sent.verify': 'Sign in',

  // Link landing
  'link.title': 'Sign in to {app}',
  'link.continueAs': 'Continue as {email}',
  'link.otherBrowserTitle': 'Finish signing in where you started',
  'link.otherBrowser':
    'This sign-in started in another browser or on another device. Go back there and type the 6-digit code from the mail (reference {reference}).',
  'link.resend': 'Send a new link to {email}',
  'link.resent': 'A new link is on its way to {email}.',

  // One-time token landing and account switching
  'token.continueAs': 'Continue as {email}',
  'token.alreadySignedIn': 'You are signed in as {email}.',
  'token.switchTitle': 'Switch accounts?',
  'token.switchIntro': 'You are signed in as {current}. This link signs you in as {next}.',
  'token.switchContinue': 'Continue as {email}',
  'token.switchKeep': 'Keep {email}',
  'token.infoTitle': 'Sign in to {app}',
  'token.info': '{app} signs you in with a link sent to your email. Open the most recent sign-in or invitation link you received, or ask {app} for a new one.',

  // Password and registration
  'password.title': 'Sign in to {app}',
  'password.submit': 'Sign in',
  'password.useLink': 'Email me a sign-in link instead',
  'register.title': 'Create your account',
  'register.intro': 'Choose a password of at least 8 characters. We will send a code to your email to confirm it is yours.',
  'register.submit': 'Create account',
  'register.passwordHint': 'At least 8 characters; avoid common passwords.',

  // Consent
  'consent.title': '{app} wants to access your account',
  'consent.intro': 'Signed in as {email}. {app} asks for:',
  'consent.allow': 'Allow',
  'consent.deny': 'Deny',
  'consent.scope.openid': 'Your account identifier',
  'consent.scope.email': 'Your email address',
  'consent.scope.profile': 'Your name and profile',
  'consent.scope.offline_access': 'Staying signed in when you are away',
  'consent.scope.urn:logto:scope:organizations': 'The organizations you belong to',
  'consent.scope.urn:logto:scope:organization_roles': 'Your roles in your organizations',
  'consent.scope.other': 'The permission “{scope}”',

  // Logout
  'logout.title': 'Sign out?',
  'logout.intro': 'Do you want to sign out on this device?',
  'logout.yes': 'Yes, sign me out',
  'logout.no': 'No, stay signed in',
  'logout.doneTitle': 'You are signed out',
  'logout.done': 'You can close this window.',

  // Failures (titles and explanations per error code)
  'error.title': 'Sign-in could not continue',
  'error.TOKEN_EXPIRED.title': 'This link has expired',
  'error.TOKEN_EXPIRED': 'Sign-in links work for a limited time.',
  'error.TOKEN_ALREADY_USED.title': 'This link was already used',
  'error.TOKEN_ALREADY_USED': 'Each sign-in link works once. If it was not you who used it, get a new link and tell the app.',
  'error.TOKEN_INVALID.title': 'This link is not valid',
  'error.TOKEN_INVALID': 'The link may be incomplete, revoked, or meant for another email address.',
  'error.TOKEN_SUPERSEDED.title': 'A newer link was sent',
  'error.TOKEN_SUPERSEDED': 'Only the most recent sign-in mail works. Use the newest mail, or get a new link.',
  'error.ACCOUNT_DISABLED.title': 'This account is disabled',
  'error.ACCOUNT_DISABLED': 'Signing in to this account is not possible right now. Contact the app’s support.',
  'error.INTERACTION_NOT_FOUND.title': 'This sign-in has ended',
  'error.INTERACTION_NOT_FOUND': 'This sign-in session has ended or was started in another browser. Go back to the app and start again.',
  'error.OTP_INVALID': 'This code is not correct. Check the newest mail and try again.',
  'error.OTP_EXPIRED': 'This code has expired. Send a new mail.',
  'error.OTP_LOCKED': 'Too many wrong codes. Send a new mail.',
  'error.EMAIL_INVALID': 'Enter a valid email address, like name@example.com.',
  'error.INVALID_CREDENTIALS': 'The email or the password is not correct.',
  'error.PASSWORD_TOO_WEAK': 'Choose a password of at least 8 characters that is not a common one.',
  'error.SIGN_IN_METHOD_DISABLED': 'This sign-in method is turned off.',
  'error.REGISTRATION_DISABLED': 'Creating an account here is turned off.',
  'error.RATE_LIMITED': 'Too many attempts. Wait a little and try again.',
  'error.MAIL_NOT_SENT': 'The mail could not be sent. Nothing was changed; try again in a moment.',
  'error.INVALID_ORIGIN': 'The form was sent from another site or expired. Go back and try again.',
  'error.generic': 'Something went wrong. Go back to the app and try again.',
  'error.getNewLink': 'Send me a new link',
  'error.newLinkHint': 'We can send a fresh link to {email}.',

  // Mails
  'mail.link.subject': 'Sign in to {app}',
  'mail.link.title': 'Sign in to {app}',
  'mail.link.intro': 'Use this link to sign in to {app} as {email}. No password is needed.',
  'mail.link.action': 'Sign in',
  'mail.link.codeIntro': 'Or type this code where you started signing in:',
  'mail.code.subject': 'Your {app} sign-in code',
  'mail.code.title': 'Your sign-in code',
  'mail.code.intro': 'Type this code to sign in to {app} as {email}:',
  'mail.register.subject': 'Confirm your email for {app}',
  'mail.register.title': 'Confirm your email address',
  'mail.register.intro': 'Type this code to finish creating your {app} account:',
  'mail.register.exists': 'You already have an account with this address: the code signs you in to it. Your password was not changed.',
  'mail.footer.expires': 'It works for {minutes} minutes and only once. Reference: {reference}.',
  'mail.footer.ignore': 'If you did not ask for this, ignore this mail: nothing happens unless the link or code is used.',
  'mail.copyLink': 'If the button does not work, copy this link into your browser:',
} as const;

export type MessageKey = keyof typeof en;

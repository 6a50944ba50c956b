/**
 * One error type for the whole product and one table mapping each stable code
 * to its HTTP status and default message. Inside OIDC flows oidc-provider's own
 * error classes are used instead, so clients get spec-conform errors.
 */
export const errorTable = {
  UNAUTHORIZED: { status: 401, message: 'A valid access token is required.' },
  FORBIDDEN: { status: 403, message: 'The access token does not grant this operation.' },
  INVALID_INPUT: { status: 400, message: 'The request is invalid.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send the body as application/json.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  INVALID_ORIGIN: { status: 403, message: 'The request must come from this site.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed.' },
  CONFLICT: { status: 409, message: 'This conflicts with existing data.' },
  EMAIL_ALREADY_IN_USE: { status: 409, message: 'Another user has this email address.' },
  TOKEN_EXPIRED: { status: 410, message: 'This link has expired.' },
  TOKEN_ALREADY_USED: { status: 410, message: 'This link has already been used.' },
  TOKEN_INVALID: { status: 410, message: 'This link is not valid.' },
  TOKEN_SUPERSEDED: { status: 410, message: 'A newer sign-in link was sent: use the most recent one.' },
  ACCOUNT_DISABLED: { status: 403, message: 'This account is disabled.' },
  EMAIL_INVALID: { status: 400, message: 'Enter a valid email address.' },
  OTP_INVALID: { status: 400, message: 'This code is not correct.' },
  OTP_EXPIRED: { status: 410, message: 'This code has expired. Ask for a new one.' },
  OTP_LOCKED: { status: 410, message: 'Too many wrong codes. Ask for a new one.' },
  TOTP_INVALID: { status: 400, message: 'This code is not correct.' },
  FACTOR_LOCKED: { status: 429, message: 'Too many wrong codes for this sign-in. Start again from the app.' },
  MFA_REQUIRED: { status: 403, message: 'A second factor is required.' },
  INVALID_CREDENTIALS: { status: 401, message: 'The email or the password is not correct.' },
  PASSWORD_TOO_WEAK: { status: 400, message: 'Choose a longer or less common password.' },
  SIGN_IN_METHOD_DISABLED: { status: 403, message: 'This sign-in method is turned off.' },
  REGISTRATION_DISABLED: { status: 403, message: 'Creating an account here is turned off.' },
  RATE_LIMITED: { status: 429, message: 'Too many attempts. Wait a moment and try again.' },
  IP_BANNED: { status: 403, message: 'Requests from your network address are blocked.' },
  INTERACTION_NOT_FOUND: {
    status: 400,
    message: 'This sign-in session has ended or was started in another browser. Go back to the app and start again.',
  },
  MAIL_NOT_SENT: { status: 502, message: 'The mail could not be sent. Nothing was changed; try again.' },
  INTERNAL: { status: 500, message: 'Something went wrong on our side.' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Sesame is temporarily unavailable. Try again in a moment.' },
  NOT_READY: { status: 503, message: 'Sesame is not ready to serve requests.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorTable;

export class AppError extends Error {
  readonly status: number;

  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message ?? errorTable[code].message);
    this.name = 'AppError';
    this.status = errorTable[code].status;
  }

  toBody(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.details };
  }
}

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
  ACCOUNT_DISABLED: { status: 403, message: 'This account is disabled.' },
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

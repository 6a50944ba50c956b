import { AppError } from '../errors.ts';

export const MIN_PASSWORD_LENGTH = 8;
export const MAX_PASSWORD_LENGTH = 256;

/**
 * Passwords attackers try first (from published breach top lists), compared
 * case-insensitively. Small on purpose: it catches the obvious, and length does
 * the rest.
 */
const common = new Set(
  `password password1 password12 password123 password1234 passw0rd p@ssw0rd p@ssword pa$$word passwort passwort1
12345678 123456789 1234567890 12345678910 87654321 11111111 00000000 88888888 12341234 11223344 12121212 123123123
qwertyui qwertyuiop qwerty123 qwerty12 1qaz2wsx zaq12wsx asdfghjk asdfasdf azertyui iloveyou iloveyou1 sunshine
princess football baseball welcome1 welcome123 trustno1 superman batman123 dragon12 starwars letmein1 letmein123
monkey123 abc12345 abcd1234 aa123456 a1234567 changeme changeme1 computer internet whatever freedom1 shadow12
master12 michael1 jennifer jordan23 hello123 charlie1 access14 mustang1 secret12 secret123 administrator admin123
admin1234 root1234 test1234 testtest guest123 default1 sesame123 opensesame 1q2w3e4r 1q2w3e4r5t q1w2e3r4 q1w2e3r4t5
zxcvbnm1 zxcvbnm123 11111111a 1234qwer qwer1234 passpass loveyou1 987654321 99999999 123qweasd qweasdzxc`
    .split(/\s+/)
    .filter(Boolean),
);

/** Throws PASSWORD_TOO_WEAK (with the reason in `details.reason`) unless the password is acceptable. */
export function assertPasswordPolicy(password: string, email?: string): void {
  const reason =
    password.length < MIN_PASSWORD_LENGTH
      ? 'too_short'
      : password.length > MAX_PASSWORD_LENGTH
        ? 'too_long'
        : common.has(password.toLowerCase()) || /^(.)\1+$/.test(password)
          ? 'too_common'
          : email && password.toLowerCase() === email.toLowerCase()
            ? 'same_as_email'
            : undefined;
  if (reason) throw new AppError('PASSWORD_TOO_WEAK', undefined, { reason });
}

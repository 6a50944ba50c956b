import { SMTPServer } from 'smtp-server';

/**
 * A local SMTP server that accepts every mail and throws it away (counting
 * them): where Sesame sends the magic links of scenario 4. One per bench
 * run, on a loopback port, started on first use; it does not keep the
 * process alive.
 */
let started: Promise<{ url: string; received: () => number }> | undefined;

export function smtpSink(): Promise<{ url: string; received: () => number }> {
  started ??= new Promise((resolve, reject) => {
    let received = 0;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, _session, callback) {
        stream.on('end', () => {
          received += 1;
          callback();
        });
        stream.resume();
      },
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.server.address() as { port: number };
      server.server.unref();
      resolve({ url: `smtp://127.0.0.1:${port}`, received: () => received });
    });
  });
  return started;
}

/** A real SMTP server on loopback that tests can inspect and make misbehave on purpose. */
import type { Socket } from 'node:net';
import { SMTPServer, type SMTPServerError, type SMTPServerSession } from 'smtp-server';
import { selfSignedCert } from './certs.js';

export interface SmtpPeerOptions {
  /** Implicit TLS from the first byte (like port 465). Default false. */
  secure?: boolean;
  /** Offer STARTTLS (default true when not secure). When false, the server speaks plain text only. */
  starttls?: boolean;
  /** When given, AUTH PLAIN and LOGIN are required with these user -> password pairs; a wrong password gets 535. */
  users?: Record<string, string>;
  /** Max message size advertised (SIZE). */
  size?: number;
  /** The names on its certificate, OpenSSL's syntax. Default `DNS:localhost,IP:127.0.0.1`. */
  certificateNames?: string;
  /** Recipients accepted per transaction; the rest get `452 4.5.3 Too many recipients` (RFC 5321 §4.5.3.1.10). */
  maxRecipients?: number;
  /** Leave 8BITMIME out of EHLO, so a relaying MTA must turn 8-bit content into 7-bit. Default false. */
  hide8BITMIME?: boolean;
}

export type SmtpFault =
  /** Answer that stage with this code; at 'data' the whole message is read first. */
  | { reply: number; at: 'mail' | 'rcpt' | 'data'; message?: string }
  /** During DATA: read the first chunk of the message, then destroy the socket (no reply). */
  | { drop: 'data' }
  /** Read the complete message, then destroy the socket without replying. */
  | { drop: 'after-data' }
  /** Wait this many ms before answering that stage, then answer 451 if the socket is still open. */
  | { delay: number; at: 'mail' | 'data' };

export interface ReceivedSmtp {
  envelope: { mailFrom: string; rcptTo: string[] };
  /** The exact message bytes as received (dot-unstuffed, without the final dot). */
  raw: Buffer;
  /** TLS was in use (implicit or STARTTLS). */
  secure: boolean;
  /** Authenticated user. */
  user: string | undefined;
}

export interface SmtpPeer {
  host: '127.0.0.1';
  port: number;
  /** The PEM certificate the server uses, to pass as `ca` to a client. */
  cert: string;
  /** Messages accepted (250 after DATA), oldest first. Faulted transactions are never recorded. */
  messages: ReceivedSmtp[];
  /** MAIL FROM commands seen (one per attempted transaction). */
  transactions: number;
  /** The SIZE= each MAIL FROM declared (RFC 1870), in order; undefined where it declared none. */
  declaredSizes: (number | undefined)[];
  /** TCP connections accepted. */
  connections: number;
  /** Auth attempts seen (successful or not). */
  authAttempts: number;
  /** Queues a fault for the next `times` transactions (default 1), consumed one per MAIL FROM. */
  failNext(fault: SmtpFault, times?: number): void;
  /**
   * Refuse this recipient at RCPT TO with the given code (default 550) while accepting others: the
   * next `times` times it is named (default: every time), e.g. `450` once for greylisting.
   */
  rejectRecipient(address: string, code?: number, times?: number, message?: string): void;
  close(): Promise<void>;
}

const smtpError = (responseCode: number, message: string): SMTPServerError =>
  Object.assign(new Error(message), { responseCode });

export async function startSmtpPeer(options: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const { key, cert } = await selfSignedCert(options.certificateNames);
  const queued: SmtpFault[] = [];
  // The fault of the session's current transaction; smtp-server keeps one session object per connection.
  const faults = new WeakMap<SMTPServerSession, SmtpFault>();
  const refused = new Map<string, { code: number; times: number; message: string | undefined }>();
  const sockets = new Set<Socket>();

  // smtp-server has no public way to drop a client mid-session. Its `connections` registry and
  // each connection's `_socket` (declared in its own typings, so a rename fails tsc) give the
  // socket the session currently talks on: the TLS socket once TLS is up, so destroying it also
  // closes the TCP socket underneath.
  const drop = (session: SMTPServerSession) => {
    for (const connection of server.connections) {
      if (connection.session === session) connection._socket.destroy();
    }
  };

  const peer: SmtpPeer = {
    host: '127.0.0.1',
    port: 0,
    cert,
    messages: [],
    transactions: 0,
    declaredSizes: [],
    connections: 0,
    authAttempts: 0,
    failNext(fault, times = 1) {
      for (let i = 0; i < times; i++) queued.push(fault);
    },
    rejectRecipient(address, code = 550, times = Number.POSITIVE_INFINITY, message) {
      refused.set(address.toLowerCase(), { code, times, message });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Without this, server.close() waits up to 30 s for clients to leave on their own.
        for (const connection of server.connections) connection._socket.destroy();
        // Half-closed sockets (after QUIT or a 421) have already left the registry.
        for (const socket of sockets) socket.destroy();
      }),
  };

  const server = new SMTPServer({
    secure: options.secure ?? false,
    key,
    cert,
    disabledCommands: options.starttls === false ? ['STARTTLS'] : [],
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: !options.users,
    size: options.size,
    hide8BITMIME: options.hide8BITMIME ?? false,
    disableReverseLookup: true,
    logger: false,

    onAuth(auth, _session, callback) {
      peer.authAttempts++;
      const expected = auth.username === undefined ? undefined : options.users?.[auth.username];
      if (expected === undefined || auth.password !== expected) {
        return callback(smtpError(535, 'Authentication credentials invalid'));
      }
      callback(null, { user: auth.username });
    },

    onMailFrom(address, session, callback) {
      peer.transactions++;
      const size = address.args ? address.args.SIZE : undefined;
      peer.declaredSizes.push(size === undefined ? undefined : Number(size));
      const fault = queued.shift();
      if (fault) faults.set(session, fault);
      else faults.delete(session);

      if (fault && 'reply' in fault && fault.at === 'mail') {
        return callback(smtpError(fault.reply, fault.message ?? 'Sender refused by test fault'));
      }
      if (fault && 'delay' in fault && fault.at === 'mail') {
        // No liveness check needed: smtp-server's send() writes nothing once the client has gone.
        setTimeout(() => callback(smtpError(451, 'Delayed by test fault')), fault.delay);
        return;
      }
      callback();
    },

    onRcptTo(address, session, callback) {
      const fault = faults.get(session);
      if (fault && 'reply' in fault && fault.at === 'rcpt') {
        return callback(smtpError(fault.reply, fault.message ?? 'Recipient refused by test fault'));
      }
      if (options.maxRecipients !== undefined && session.envelope.rcptTo.length >= options.maxRecipients) {
        return callback(smtpError(452, '4.5.3 Too many recipients'));
      }
      const refusal = refused.get(address.address.toLowerCase());
      if (refusal && refusal.times > 0) {
        refusal.times--;
        return callback(smtpError(refusal.code, refusal.message ?? `Recipient ${address.address} refused`));
      }
      callback();
    },

    onData(stream, session, callback) {
      const fault = faults.get(session);
      // Dropping never calls back: the client must see the connection vanish, not a reply.
      if (fault && 'drop' in fault && fault.drop === 'data') {
        stream.once('data', () => drop(session));
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        if (fault && 'drop' in fault) return drop(session);
        if (fault && 'reply' in fault && fault.at === 'data') {
          return callback(smtpError(fault.reply, fault.message ?? 'Message refused by test fault'));
        }
        if (fault && 'delay' in fault && fault.at === 'data') {
          setTimeout(() => callback(smtpError(451, 'Delayed by test fault')), fault.delay);
          return;
        }
        const { mailFrom, rcptTo } = session.envelope;
        peer.messages.push({
          envelope: { mailFrom: mailFrom ? mailFrom.address : '', rcptTo: rcptTo.map((r) => r.address) },
          raw: Buffer.concat(chunks),
          secure: session.secure,
          // After STARTTLS smtp-server resets `user` to false rather than undefined.
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
  });

  server.server.on('connection', (socket: Socket) => {
    peer.connections++;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Clients vanishing mid-transaction (which the faults provoke) surface as server errors; an
  // unhandled 'error' event would crash the test run instead of failing one assertion.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (!address || typeof address === 'string') throw new Error('SMTP peer is not listening on TCP');
  peer.port = address.port;
  return peer;
}

/**
 * The attachments of a captured `.eml`, for the preview's list and download links: a small MIME
 * walk (RFC 2045–2046 multipart, RFC 2231 parameter values, RFC 2047 encoded words), enough for
 * what the sandbox writes (nodemailer's composer), never trusted for more than names and bytes.
 */

/** One attachment of a captured email. */
export interface OutboxAttachment {
  /** Its position among the email's attachments, from 0: the download link's last segment. */
  readonly index: number;
  /** The file name it was sent with; `attachment-N` when it had none. */
  readonly filename: string;
  /** Its declared type, e.g. `application/pdf`, lower case. */
  readonly contentType: string;
  /** Decoded size in bytes. */
  readonly size: number;
}

interface Part {
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** The attachments of `eml` with their decoded bytes, in order. */
export function attachmentsOf(eml: string): (OutboxAttachment & { readonly content: Buffer })[] {
  const found: (OutboxAttachment & { content: Buffer })[] = [];
  walk(split(eml), 0, (part) => {
    const type = (part.headers.get('content-type') ?? 'text/plain').toLowerCase();
    const disposition = part.headers.get('content-disposition') ?? '';
    const filename =
      parameter(disposition, 'filename') ?? parameter(part.headers.get('content-type') ?? '', 'name');
    const isAttachment =
      /^\s*attachment/i.test(disposition) || (filename !== undefined && !type.startsWith('text/'));
    if (!isAttachment) return;
    const content = decode(part.body, part.headers.get('content-transfer-encoding'));
    found.push({
      index: found.length,
      filename: filename ?? `attachment-${found.length + 1}`,
      contentType: type.split(';')[0]!.trim(),
      size: content.length,
      content,
    });
  });
  return found;
}

function walk(part: Part, depth: number, visit: (leaf: Part) => void): void {
  const type = part.headers.get('content-type') ?? '';
  const boundary = /^\s*multipart\//i.test(type) ? parameter(type, 'boundary') : undefined;
  if (boundary === undefined || depth > 10) {
    visit(part);
    return;
  }
  const pieces = part.body.split(
    new RegExp(`(?:^|\\r?\\n)--${escapeRegExp(boundary)}(?:--)?[ \\t]*(?:\\r?\\n|$)`),
  );
  // The preamble before the first boundary and the epilogue after the last are not parts.
  for (const piece of pieces.slice(1, -1)) walk(split(piece), depth + 1, visit);
}

/** Headers (unfolded, names lower case) and body of one entity. */
function split(entity: string): Part {
  const end = entity.search(/\r?\n\r?\n/);
  const block = end === -1 ? entity : entity.slice(0, end);
  const body = end === -1 ? '' : entity.slice(end).replace(/^\r?\n\r?\n/, '');
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body };
}

/** A header parameter: `name="x"`, `name=x`, `name*=utf-8''x%20y`, or RFC 2231 continuations `name*0*=`. */
function parameter(header: string, name: string): string | undefined {
  const params = new Map<string, string>();
  for (const match of header.matchAll(/;\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g)) {
    const value = match[2]!.trim();
    params.set(
      match[1]!.toLowerCase(),
      value.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, '$1') : value,
    );
  }
  const plain = params.get(name);
  const extended = params.get(`${name}*`);
  const pieces: string[] = [];
  for (let i = 0; params.has(`${name}*${i}`) || params.has(`${name}*${i}*`); i++) {
    pieces.push(params.get(`${name}*${i}*`) ?? params.get(`${name}*${i}`)!);
  }
  const encoded = extended ?? (pieces.length ? pieces.join('') : undefined);
  if (encoded !== undefined) {
    const [, charset = 'utf-8', text = encoded] = /^([\w-]*)'[\w-]*'(.*)$/.exec(encoded) ?? [];
    try {
      const bytes = Buffer.from(
        text.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
        'latin1',
      );
      return new TextDecoder(charset || 'utf-8').decode(bytes);
    } catch {
      return text;
    }
  }
  return plain === undefined ? undefined : decodeWords(plain);
}

function decode(body: string, encoding: string | undefined): Buffer {
  const kind = (encoding ?? '7bit').toLowerCase();
  if (kind === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64');
  if (kind === 'quoted-printable') {
    const soft = body.replace(/=\r?\n/g, '');
    return Buffer.from(
      soft.replace(/=([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16))),
      'latin1',
    );
  }
  return Buffer.from(body.replace(/\r?\n$/, ''), 'utf8');
}

/** RFC 2047 encoded words (`=?UTF-8?B?…?=`, `=?UTF-8?Q?…?=`); whitespace between two of them goes. */
export function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(
      /=\?([\w-]+)(?:\*[\w-]+)?\?([BbQq])\?([^?]*)\?=/g,
      (word, charset: string, encoding: string, text: string) => {
        try {
          const bytes =
            encoding.toUpperCase() === 'B'
              ? Buffer.from(text, 'base64')
              : Buffer.from(
                  text
                    .replace(/_/g, ' ')
                    .replace(/=([0-9A-Fa-f]{2})/g, (_, hex: string) =>
                      String.fromCharCode(Number.parseInt(hex, 16)),
                    ),
                  'latin1',
                );
          return new TextDecoder(charset).decode(bytes);
        } catch {
          return word;
        }
      },
    );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

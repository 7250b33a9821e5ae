// Cuts the byte stream of a BGP connection into whole messages. TCP hands
// over arbitrary slices: a message may arrive in pieces, several may arrive
// at once. The header is checked as soon as its 19 bytes are in, so a peer
// that is out of step is answered at once rather than after 4 KiB of garbage.
import { decodeHeader, HEADER_LENGTH, type Header } from './codec/header.js';
import type { BgpProtocolError } from './codec/errors.js';

export type Frame =
  { ok: true; header: Header; bytes: Buffer } | { ok: false; error: BgpProtocolError };

export class MessageFramer {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private failed = false;

  /** Bytes held back waiting for the rest of a message. */
  get buffered(): number {
    return this.pendingLength;
  }

  /**
   * Adds bytes; returns the messages they complete, in order. After a header
   * error the stream cannot be trusted, so the error is the last frame ever
   * returned and later bytes are ignored.
   */
  push(chunk: Buffer): Frame[] {
    if (this.failed) return [];
    this.pending.push(chunk);
    this.pendingLength += chunk.length;
    let buf = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const frames: Frame[] = [];
    let off = 0;
    while (buf.length - off >= HEADER_LENGTH) {
      const header = decodeHeader(buf.subarray(off, off + HEADER_LENGTH));
      if (!header.ok) {
        this.failed = true;
        frames.push(header);
        this.pending = [];
        this.pendingLength = 0;
        return frames;
      }
      if (buf.length - off < header.value.length) break;
      // A copy, so a message kept by the caller does not pin the socket's chunk.
      frames.push({
        ok: true,
        header: header.value,
        bytes: Buffer.from(buf.subarray(off, off + header.value.length)),
      });
      off += header.value.length;
    }
    buf = buf.subarray(off);
    this.pending = buf.length > 0 ? [buf] : [];
    this.pendingLength = buf.length;
    return frames;
  }
}

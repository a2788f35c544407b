/**
 * The bytes of a capture as its readers (pcap.ts, pcapng.ts) take them: a
 * window over the file that slides forward. A reader asks for the bytes
 * [off, off + need) by file offset (ensure()); the source keeps them in one
 * buffer, reading more of the file (or pipe) when they are not there yet,
 * and discarding what lies before `off`. So a capture of any size costs one
 * buffer of CHUNK bytes (more only while one record is larger), and a pipe
 * (stdin: `tcpdump -w - | nfvm replay ... --pcap -`) is read exactly once.
 *
 * A source over a buffer already in memory (BufferSource) holds it whole:
 * views into it stay valid.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CaptureError } from './frame.js';

/** Bytes read from the file at a time. */
export const CHUNK = 1 << 20;
/**
 * The largest record or block a reader buffers (libpcap's sf-pcapng.c
 * caps a block at 16 MiB the same way): a length beyond it in a file that
 * has the bytes is refused as damaged rather than read.
 */
export const MAX_RECORD = 16 << 20;

export interface ByteSource {
  /** The window: file offset `base` is buf[0]. Valid until the next ensure(). */
  readonly buf: Uint8Array;
  readonly dv: DataView;
  readonly base: number;
  /** The file's size when known (a regular file, a buffer), -1 for a pipe. */
  readonly size: number;
  /**
   * Makes [off, off + need) available in `buf` (at off - base) as far as the
   * input has it, forgetting what precedes `off`; returns the bytes
   * available from `off` (fewer than `need` only at the end of the input).
   * `off` never goes backwards.
   */
  ensure(off: number, need: number): number;
  close(): void;
}

/** A capture held in memory. */
export class BufferSource implements ByteSource {
  readonly dv: DataView;
  readonly base = 0;
  readonly size: number;
  constructor(readonly buf: Uint8Array) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.size = buf.length;
  }

  ensure(off: number, _need: number): number {
    return Math.max(0, this.buf.length - off);
  }

  close(): void {}
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** A capture read from a file descriptor in chunks. */
export class FileSource implements ByteSource {
  buf = new Uint8Array(CHUNK);
  dv = new DataView(this.buf.buffer);
  base = 0;
  readonly size: number;
  /** Valid bytes: buf[0, end). */
  private end = 0;
  private eof = false;

  constructor(
    private readonly fd: number,
    readonly name: string,
    private readonly owned: boolean,
  ) {
    let size = -1;
    try {
      const st = fstatSync(fd);
      if (st.isFile()) size = st.size;
    } catch {
      // not a file: read to the end
    }
    this.size = size;
  }

  /** Opens `path` (`-`: stdin); a file that cannot be opened is an 'io' CaptureError. */
  static open(path: string): FileSource {
    if (path === '-') return new FileSource(0, '<stdin>', false);
    let fd: number;
    try {
      fd = openSync(path, 'r');
      if (fstatSync(fd).isDirectory()) {
        closeSync(fd);
        throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : `cannot read (${code ?? (e as Error).message})`;
      throw new CaptureError('io', reason, path, 0);
    }
    return new FileSource(fd, path, true);
  }

  ensure(off: number, need: number): number {
    const at = off - this.base;
    if (this.end - at >= need || this.eof) return Math.max(0, this.end - at);
    // Slide the window to `off`, growing the buffer only for a record larger than it.
    let keep = 0;
    if (at < this.end) keep = this.end - at;
    else if (at > this.end) this.skip(at - this.end);
    if (need > this.buf.length) {
      let n = this.buf.length;
      while (n < need) n *= 2;
      const b = new Uint8Array(n);
      if (keep) b.set(this.buf.subarray(at, this.end));
      this.buf = b;
      this.dv = new DataView(b.buffer);
    } else if (keep && at > 0) this.buf.copyWithin(0, at, this.end);
    this.base = off;
    this.end = keep;
    while (this.end < need && !this.eof) {
      const got = this.read(this.buf, this.end, this.buf.length - this.end);
      if (got === 0) this.eof = true;
      this.end += got;
    }
    return this.end;
  }

  /** Reads and discards `n` bytes (an offset past the window: a skipped block). */
  private skip(n: number): void {
    let left = n;
    while (left > 0 && !this.eof) {
      const got = this.read(this.buf, 0, Math.min(left, this.buf.length));
      if (got === 0) this.eof = true;
      left -= got;
    }
  }

  private read(b: Uint8Array, at: number, len: number): number {
    for (;;) {
      try {
        return readSync(this.fd, b, at, len, null);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A non-blocking pipe with nothing in it yet: wait for the writer.
        if (code === 'EAGAIN') {
          Atomics.wait(sleeper, 0, 0, 2);
          continue;
        }
        if (code === 'EOF') return 0;
        throw new CaptureError('io', `cannot read (${code ?? (e as Error).message})`, this.name, this.base + at);
      }
    }
  }

  close(): void {
    if (this.owned) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
    }
  }
}

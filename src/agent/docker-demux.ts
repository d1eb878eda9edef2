// The Docker engine's multiplexed log stream (frames of an 8-byte header: stream type 1 stdout / 2 stderr, three
// zero bytes, payload length big-endian; then the payload) split into stdout and stderr, with backpressure: a
// chunk is taken only once both outputs have room, so that a unit's paused reader (lines.ts) slows the engine's
// stream instead of piling a flood up in memory. (docker-modem's demuxStream writes on regardless.)
import { Writable } from "node:stream";

export class DockerDemux extends Writable {
  private buf: Buffer = Buffer.alloc(0);
  /** Set when a header is not one: the stream is not multiplexed (a TTY), everything goes to stdout as is. */
  private raw = false;

  constructor(
    private readonly stdout: Writable,
    private readonly stderr: Writable,
  ) {
    super();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    const full: Writable[] = [];
    const put = (to: Writable, data: Buffer): void => {
      if (!to.write(data) && !full.includes(to)) full.push(to);
    };
    if (this.raw) put(this.stdout, chunk);
    else {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= 8) {
        const type = this.buf[0]!;
        if (type > 2) {
          this.raw = true;
          put(this.stdout, this.buf);
          this.buf = Buffer.alloc(0);
          break;
        }
        const end = 8 + this.buf.readUInt32BE(4);
        if (this.buf.length < end) break;
        put(type === 2 ? this.stderr : this.stdout, this.buf.subarray(8, end));
        this.buf = this.buf.subarray(end);
      }
    }
    let waiting = full.length;
    if (waiting === 0) return done();
    for (const to of full)
      to.once("drain", () => {
        if (--waiting === 0) done();
      });
  }
}

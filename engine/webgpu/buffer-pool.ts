/**
 * Size-bucketed pool of storage buffers. Sizes are rounded up to quarter-powers of two
 * (2^k, 1.25·2^k, 1.5·2^k, 1.75·2^k; at least 16 bytes), so rounding wastes under 25%.
 * A released buffer goes to `pending` while commands that may use it are still being encoded,
 * and only becomes reusable after the submit that last used it (`onSubmit`), so that a later
 * `queue.writeBuffer` can never overwrite data an unsubmitted dispatch still has to read.
 */
export class BufferPool {
  private free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  bytesInUse = 0;
  /** The largest `bytesInUse` since creation or the last `resetPeak()`. */
  peakBytesInUse = 0;
  bytesPooled = 0;
  /** Pooled bytes above this are destroyed instead of kept. */
  maxPooledBytes = 512 * 1024 * 1024;

  constructor(
    private readonly device: GPUDevice,
    private readonly usage: GPUBufferUsageFlags,
  ) {}

  static bucket(bytes: number): number {
    const b = Math.max(16, bytes);
    if (b <= 64) return Math.ceil(b / 16) * 16;
    const p = 2 ** Math.floor(Math.log2(b));
    const q = p / 4;
    return Math.ceil(b / q) * q;
  }

  acquire(bytes: number): GPUBuffer {
    const size = BufferPool.bucket(bytes);
    const list = this.free.get(size);
    let buf = list?.pop();
    if (buf) this.bytesPooled -= size;
    else buf = this.device.createBuffer({ size, usage: this.usage });
    this.bytesInUse += size;
    if (this.bytesInUse > this.peakBytesInUse) this.peakBytesInUse = this.bytesInUse;
    return buf;
  }

  /**
   * Returns a buffer. With `afterNextSubmit` (commands that may use it are still being
   * encoded) it becomes reusable only after the next submit; otherwise at once.
   */
  release(buf: GPUBuffer, afterNextSubmit: boolean): void {
    this.bytesInUse -= buf.size;
    if (afterNextSubmit) {
      this.pending.push(buf);
      this.bytesPooled += buf.size;
    } else this.putFree(buf);
  }

  private putFree(buf: GPUBuffer): void {
    if (this.bytesPooled + buf.size > this.maxPooledBytes) {
      buf.destroy();
      return;
    }
    let list = this.free.get(buf.size);
    if (!list) this.free.set(buf.size, (list = []));
    list.push(buf);
    this.bytesPooled += buf.size;
  }

  /** Called right after a queue submit: pending buffers become reusable. */
  onSubmit(): void {
    const pending = this.pending;
    this.pending = [];
    for (const buf of pending) {
      this.bytesPooled -= buf.size;
      this.putFree(buf);
    }
  }

  /** Starts a new peak measurement at the current `bytesInUse`. */
  resetPeak(): void {
    this.peakBytesInUse = this.bytesInUse;
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy();
    for (const b of this.pending) b.destroy();
    this.free.clear();
    this.pending = [];
    this.bytesPooled = 0;
  }
}

// A byte budget shared by the connections of one server: what they may hold of requests not yet answered.

export class InFlightBytes {
  used = 0;

  constructor(readonly limit: number) {}

  /** Counts n more bytes; false (nothing counted) when that would pass the limit. */
  take(n: number): boolean {
    if (this.used + n > this.limit) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/**
 * A growing array of int32 words (capacity doubles), for what the compiler
 * builds word by word and big rulesets make big: the code and constant pool
 * of a program, the classifier tables. An exact-size Int32Array at the end.
 */
export class Words {
  private a: Int32Array;
  length = 0;

  constructor(capacity = 1024) {
    this.a = new Int32Array(Math.max(16, capacity));
  }

  /** Makes room for `n` more words. */
  reserve(n: number): void {
    if (this.length + n <= this.a.length) return;
    let cap = this.a.length * 2;
    while (cap < this.length + n) cap *= 2;
    const b = new Int32Array(cap);
    b.set(this.a.subarray(0, this.length));
    this.a = b;
  }

  push(w: number): void {
    if (this.length === this.a.length) this.reserve(1);
    this.a[this.length++] = w;
  }

  /** Appends `n` copies of `w`. */
  fill(w: number, n: number): void {
    this.reserve(n);
    this.a.fill(w, this.length, this.length + n);
    this.length += n;
  }

  /** Appends every word of `src`. */
  append(src: ArrayLike<number>): void {
    this.reserve(src.length);
    if (src instanceof Int32Array) this.a.set(src, this.length);
    else for (let i = 0; i < src.length; i++) this.a[this.length + i] = src[i]!;
    this.length += src.length;
  }

  get(i: number): number {
    return this.a[i]!;
  }

  set(i: number, w: number): void {
    if (i >= this.length) throw new RangeError(`word ${i} past the end (${this.length})`);
    this.a[i] = w;
  }

  /** A view of words [from, to) (valid until the next append). */
  view(from: number, to: number): Int32Array {
    return this.a.subarray(from, to);
  }

  /**
   * The words as an exact-size array, without a copy when the capacity was
   * exact; the Words is empty afterwards.
   */
  take(): Int32Array {
    const r = this.length === this.a.length ? this.a : this.a.slice(0, this.length);
    this.a = new Int32Array(16);
    this.length = 0;
    return r;
  }
}

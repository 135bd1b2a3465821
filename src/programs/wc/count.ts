/**
 * wc's counter (pure): lines, words and bytes of a byte stream fed in chunks. A line is a '\n';
 * a word is a maximal run of bytes that are not ASCII white space (space, \t, \n, \v, \f, \r).
 * Invariant: the counts do not depend on how the stream is cut into chunks.
 */
export class Counter {
  lines = 0;
  words = 0;
  bytes = 0;
  private inWord = false;

  add(chunk: Uint8Array): void {
    let { lines, words, inWord } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === 0x0a) lines++;
      const space = b === 0x20 || (b >= 0x09 && b <= 0x0d);
      if (space) inWord = false;
      else if (!inWord) {
        inWord = true;
        words++;
      }
    }
    this.lines = lines;
    this.words = words;
    this.inWord = inWord;
    this.bytes += chunk.length;
  }
}

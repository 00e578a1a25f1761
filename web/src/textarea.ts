// A textarea's value is not the text it was given: HTML normalises every
// CR LF and lone CR to LF (the "API value", HTML §4.10.11). A body written
// elsewhere with Windows line ends would come back from the textarea
// rewritten, and saving it would replace every line of the document. So
// the text typed in a textarea is mapped back onto the text it was shown:
// what the user did not touch keeps its line ends, byte for byte.

/** `text` as a textarea shows it: CR LF and lone CR become LF. */
export function asShown(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}

/**
 * The text to save when `typed` is what a textarea holds after it was
 * shown `base`: `base` with only the span the user changed replaced. New
 * line breaks follow `base`'s convention when it has only CR LF ones.
 */
export function typedOver(base: string, typed: string): string {
  const shown = asShown(base);
  if (shown === base) return typed;
  if (shown === typed) return base;
  // Where each character of `shown` starts in `base` (and the end).
  const at: number[] = [];
  for (let i = 0; i < base.length; i++) {
    at.push(i);
    if (base[i] === "\r" && base[i + 1] === "\n") i++;
  }
  at.push(base.length);
  let start = 0;
  while (start < shown.length && start < typed.length && shown[start] === typed[start]) start++;
  let end = 0;
  while (end < shown.length - start && end < typed.length - start && shown[shown.length - 1 - end] === typed[typed.length - 1 - end]) end++;
  let middle = typed.slice(start, typed.length - end);
  if (!/\r(?!\n)|(?<!\r)\n/.test(base)) middle = middle.replace(/\n/g, "\r\n");
  return base.slice(0, at[start]) + middle + base.slice(at[shown.length - end]);
}

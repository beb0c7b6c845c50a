/** Names a hostile peer may choose: every Object.prototype member, and odd Unicode. */
import fc from 'fast-check';

export const PROTOTYPE_NAMES: readonly string[] = Object.getOwnPropertyNames(Object.prototype);

/** Object.prototype names, and strings with control characters, separators, surrogates and emoji. */
export function hostileName(): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...PROTOTYPE_NAMES),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
    fc.constantFrom('\n', 'a\nb', '\u2028', '\u202e', '\u0000', '🙂', 'ä', '..', '$edgeHub', 'a/b', ' '),
  );
}

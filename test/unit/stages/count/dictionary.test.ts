import t from 'tap';
import { TokenDictionary } from '../../../../stages/count/_dictionary.ts';
import { tokenHash } from '../../../../stages/count/_table.ts';
import { random } from '../../../oracles/count-oracle.ts';

t.test('TokenDictionary gives ids by first addition and the texts back, as a Map of strings does', async (t) => {
  const next = random(12);
  const alphabet = ['a', 'b', 'c', 'é', '中', '\u{1F600}', ' ', '\n'];
  const word = () => Array.from({ length: 1 + Math.floor(next() * 6) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
  const tokens = [...Array.from({ length: 20000 }, word), '', 'x'.repeat(10000), 'x'.repeat(9999)];
  // With only four hash values nearly every lookup meets other tokens of its hash: the text decides.
  for (const [name, hash] of [['tokenHash', tokenHash], ['four hash values', (token: string) => tokenHash(token) & 3]] as const) {
    const oracle = new Map<string, number>();
    const dictionary = new TokenDictionary();
    let wrong = 0;
    for (const token of tokens) {
      if (!oracle.has(token)) oracle.set(token, oracle.size);
      if (dictionary.idOf(token, hash(token)) !== oracle.get(token)) wrong++;
    }
    t.equal(wrong, 0, `${name}: every id is the Map's`);
    t.equal(dictionary.size, oracle.size, `${name}: ${oracle.size} distinct tokens`);
    t.ok([...oracle.keys()].every((token, id) => dictionary.token(id) === token && dictionary.hashes[id] === hash(token)), `${name}: every id gives its text and hash back`);
  }
});

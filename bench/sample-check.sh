#!/bin/sh
# Checks a sample of a run's word bigram and trigram counts against an independent counter, for
# corpora too big for bench/counter.py's in-memory Counters (the 1 GB bench corpus):
#   sh bench/sample-check.sh CORPUS DIR [N]
# Samples N (default 300) rows of ngram2 and of ngram3 at random plus the 20 most frequent of
# each from DIR/lmpipe.sqlite, then streams CORPUS through tr and awk (d2l-word: letters only,
# lowercased, n-grams across lines, the file one document) counting only the sampled n-grams.
# Prints the rows that differ and "sample-check: K of K agree"; exits 1 if any differ.
set -eu
corpus=$1; db=$2/lmpipe.sqlite; n=${3:-300}
sample=$(mktemp)
node --import tsx -e "
const { openDatabase } = await import('./storage/driver.ts');
const db = openDatabase('$db', { readonly: true });
const rows = [];
for (const [order, cols] of [[2, 'w1, w2'], [3, 'w1, w2, w3']]) {
  const sql = (tail) => 'SELECT ' + cols + ', count FROM ngram' + order + ' ' + tail;
  const picked = [...db.prepare(sql('ORDER BY random() LIMIT $n')).all(), ...db.prepare(sql('ORDER BY count DESC LIMIT 20')).all()];
  const token = db.prepare('SELECT token FROM tokens WHERE id = ?');
  for (const row of picked) rows.push(Object.keys(row).filter((k) => k !== 'count').map((k) => token.get(row[k]).token).join(' ') + '\t' + row.count);
}
process.stdout.write(rows.join('\n') + '\n');
" > "$sample"
tr -cs 'A-Za-z' '\n' < "$corpus" | tr 'A-Z' 'a-z' | awk -v sample="$sample" '
  BEGIN { while ((getline line < sample) > 0) { split(line, f, "\t"); want[f[1]] = f[2]; seen[f[1]] = 0 } }
  $0 == "" { next }
  { if ((p1 " " $0) in want) seen[p1 " " $0]++; if (p2 != "" && (p2 " " p1 " " $0) in want) seen[p2 " " p1 " " $0]++; p2 = p1; p1 = $0 }
  END { bad = 0; for (k in want) if (seen[k] != want[k]) { bad++; print "differs: " k " lmpipe " want[k] " awk " seen[k] }
        printf "sample-check: %d of %d agree\n", length(want) - bad, length(want); exit bad > 0 }'
rm -f "$sample"

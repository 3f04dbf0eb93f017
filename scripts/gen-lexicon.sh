#!/usr/bin/env bash
# Regenerates internal/pii/common.txt.gz, the lowercase English words the
# name detector treats as common words, and proper.txt.gz, the capitalised
# entries (names and places), from Debian's wamerican (SCOWL word
# lists, Copyright 2000-2011 Kevin Atkinson; licence in internal/pii/LEXICON-NOTICE).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dict=/usr/share/dict/american-english
[ -f "$dict" ] || apt-get install -y -qq wamerican >/dev/null
grep -E '^[a-z]+$' "$dict" | sort -u | gzip -9n > "$root/internal/pii/common.txt.gz"
# Capitalised entries: given names, surnames and places the dictionary knows.
grep -E '^[A-Z][a-z]+$' "$dict" | sort -u | gzip -9n > "$root/internal/pii/proper.txt.gz"

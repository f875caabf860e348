#!/usr/bin/env bash
# The shared store's scheduled job: ingest the posts folder, then fetch the prices it lacks.
#   DASHBOARD_DB  the writer's URL: postgresql://dashboard_writer:PASSWORD@HOST:5432/news
#   POSTS         the posts folder
#   PYTHON        the interpreter with the dashboard installed (default: .venv/bin/python)
# Exit status: 0 done; 1 some posts or prices could not be read (the rest is stored; the
# output says which and why); 2 or more: the job could not run (3: another writer held the
# store too long, 4: the store could not be reached).
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
: "${DASHBOARD_DB:?set DASHBOARD_DB to the shared store's URL}" "${POSTS:?set POSTS to the posts folder}"

"$PY" -m dashboard ingest "$POSTS"; ingest=$?
"$PY" -m dashboard prices fetch; prices=$?
exit $(( ingest > prices ? ingest : prices ))

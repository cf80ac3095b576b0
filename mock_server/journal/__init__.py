"""The request journal: what the app sent and what the mock answered, for GET /__admin/requests.

A bounded ring of the last JOURNAL_SIZE API requests (0 turns it off; the operator endpoints under /__admin
are never recorded, so the journal shows what the app sent, not the developer's own look at it).

Secrets never leave the process's memory: an entry is redacted before it is shown or written.

  journal.py   the Journal: the request thread only keeps the raw capture (about 1 us); in memory or files
  redact.py    Redactor, fingerprint, body_text: what of a request may be shown, and how a body is bounded
  entry.py     make_entry (a raw capture -> a redacted entry) and select (the filters of the endpoint)
  files.py     file mode (gunicorn, JOURNAL_DIR): a writer thread per process, the read barrier, the files

Everything the rest of the mock uses is imported from here: `from mock_server.journal import Journal`.
"""

from .entry import make_entry, select
from .journal import BARRIER_TIMEOUT_S, FLUSH_INTERVAL_S, RAW_BODY_CAP, Journal
from .redact import BODY_LIMIT, Redactor, body_text, fingerprint, redacted

__all__ = ["BARRIER_TIMEOUT_S", "BODY_LIMIT", "FLUSH_INTERVAL_S", "RAW_BODY_CAP", "Journal", "Redactor",
           "body_text", "fingerprint", "make_entry", "redacted", "select"]

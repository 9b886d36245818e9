"""`moto_server`, with S3's conditional writes made atomic as on AWS.

AWS documents a conditional write (`If-None-Match: *` on PutObject and on
CompleteMultipartUpload) as atomic: of concurrent writers to one key, one succeeds and the
others get 412 Precondition Failed (or 409 ConditionalRequestConflict). moto 5 checks the
condition and then stores the object in two steps of a threaded server, so under load two
writers can both "create" one key: the second becomes a later version. custody's writers
notice that (the version written must be the key's first) and retry, but the losing version
stays, and the audit rightly reports it as a later version: a test of concurrent writers
would then fail for the emulator's race, not for custody's. This wrapper takes one lock around
the two handlers that evaluate those conditions, and starts moto's own server entry point with
the same arguments.
"""

import sys
import threading

from moto.s3.responses import S3Response
from moto.server import main

_lock = threading.RLock()


def _atomic(handler):
    def wrapped(self, *args, **kwargs):
        with _lock:
            return handler(self, *args, **kwargs)

    wrapped.__name__ = handler.__name__
    return wrapped


# PutObject (If-None-Match / If-Match) and POST on a key (CompleteMultipartUpload's
# If-None-Match).
for _name in ("put_object", "_key_response_post"):
    setattr(S3Response, _name, _atomic(getattr(S3Response, _name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

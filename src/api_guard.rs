//! The library's writers, raw handles and plumbing stay out of its public API: this module
//! does not compile when one of them is public. It is built with the binary whenever the
//! `internals` feature is off (`cargo build`, and CI's `cargo clippy --lib --bins`): the
//! library is then compiled as a tool depending on it would see it. (Under `cargo test` the
//! feature is on for every target, doctests included, so no test could see the difference.)
//!
//! Every name below is `pub(crate)` in the library and `pub` only with the feature
//! (`visibility::make`, see `src/lib.rs`). Two rules of the compiler make this module fail
//! when one of them is `pub`:
//!
//! * A method call takes an inherent method before a trait's, but only one the caller may
//!   call. Each trait here gives the library's type a method of the same name, with the same
//!   receiver, returning [`Hidden`]: while the library's method is private the call resolves
//!   to the trait's; once it is public, to the library's, whose arguments and result differ.
//! * A glob import brings only the names the importer may use. Each module here imports the
//!   library module's names and, with a second glob, a stand-in for each hidden name: once
//!   the library's item is public the name is ambiguous between the two globs (E0659), and
//!   where it resolves to the library's, its type is not [`Hidden`].
//!
//! A writer newly hidden belongs here too; `cargo build` with its `pub(crate)` turned into
//! `pub` must fail.

// Nothing here runs: it only has to compile.
#![allow(dead_code)]

use custody::store::config::{LockMode, StoreOptions};
use custody::store::Store;
use custody::verify::report::Report;

/// What every stand-in gives.
pub struct Hidden;

/// `Store`'s writers (create-only puts, staging, streaming), its raw handles and probes, and
/// its reads at a version the caller picks.
trait StoreWriters: Sized {
    fn from_object_store() -> Hidden {
        Hidden
    }
    fn with_single_put_limit(self) -> Hidden {
        Hidden
    }
    fn s3_admin(&self) -> Hidden {
        Hidden
    }
    fn object_store(&self) -> Hidden {
        Hidden
    }
    fn staging_file(&self) -> Hidden {
        Hidden
    }
    fn staging_writer(&self) -> Hidden {
        Hidden
    }
    fn put_bundle(&self) -> Hidden {
        Hidden
    }
    fn create(&self) -> Hidden {
        Hidden
    }
    fn create_listed(&self) -> Hidden {
        Hidden
    }
    fn create_probe(&self) -> Hidden {
        Hidden
    }
    fn server_verifies_checksums(&self) -> Hidden {
        Hidden
    }
    fn streams(&self) -> Hidden {
        Hidden
    }
    fn start_stream(&self) -> Hidden {
        Hidden
    }
    fn put_streamed(&self) -> Hidden {
        Hidden
    }
    fn completes_conditionally(&self) -> Hidden {
        Hidden
    }
    fn list_raw(&self) -> Hidden {
        Hidden
    }
    fn read_small(&self) -> Hidden {
        Hidden
    }
    fn fetch_bundle_at(&self) -> Hidden {
        Hidden
    }
    fn object_retention_at(&self) -> Hidden {
        Hidden
    }
}
impl StoreWriters for Store {}

/// A report is built by the verifier only.
trait ReportBuilders {
    fn build() -> Hidden {
        Hidden
    }
    fn build_with() -> Hidden {
        Hidden
    }
}
impl ReportBuilders for Report {}

/// The S3 client's settings, as the store's code uses them.
trait StorePlumbing {
    fn retry_config(&self) -> Hidden {
        Hidden
    }
    fn header_value(&self) -> Hidden {
        Hidden
    }
}
impl StorePlumbing for StoreOptions {}
impl StorePlumbing for LockMode {}

fn methods(store: Store, opts: StoreOptions, mode: LockMode) -> Vec<Hidden> {
    vec![
        Store::from_object_store(),
        store.s3_admin(),
        store.object_store(),
        store.staging_file(),
        store.staging_writer(),
        store.put_bundle(),
        store.create(),
        store.create_listed(),
        store.create_probe(),
        store.server_verifies_checksums(),
        store.streams(),
        store.start_stream(),
        store.put_streamed(),
        store.completes_conditionally(),
        store.list_raw(),
        store.read_small(),
        store.fetch_bundle_at(),
        store.object_retention_at(),
        store.with_single_put_limit(),
        Report::build(),
        Report::build_with(),
        opts.retry_config(),
        mode.header_value(),
    ]
}

/// `not_public!(name in path: fn a, const B, type C)`: the module `name` fails to compile if
/// the library module `path` has a public `a`, `B` or `C`.
macro_rules! not_public {
    ($name:ident in $($path:ident)::+ : $($kind:tt $item:ident),+ $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use $($path)::+::*;
            use stand_ins::*;

            mod stand_ins {
                $(not_public!(@stand_in $kind $item);)+
            }

            fn names() {
                $(not_public!(@check $kind $item);)+
            }
        }
    };
    (@stand_in fn $f:ident) => {
        pub fn $f() -> $crate::api_guard::Hidden {
            $crate::api_guard::Hidden
        }
    };
    (@stand_in const $c:ident) => {
        pub const $c: $crate::api_guard::Hidden = $crate::api_guard::Hidden;
    };
    (@stand_in type $t:ident) => {
        pub type $t = $crate::api_guard::Hidden;
    };
    (@check fn $f:ident) => {
        let _: $crate::api_guard::Hidden = $f();
    };
    (@check const $c:ident) => {
        let _: $crate::api_guard::Hidden = $c;
    };
    (@check type $t:ident) => {
        let _: $t = $crate::api_guard::Hidden;
    };
}

not_public!(store in custody::store: const SINGLE_PUT_LIMIT, const SYNC_AHEAD_EVERY, type SyncAhead);
not_public!(ledger in custody::store::ledger:
    fn append, fn append_unique, fn append_entry, fn ensure_store_id,
    type NewEntry, type Appended, const MAX_APPEND_ATTEMPTS,
);
not_public!(inspect in custody::store::inspect: fn probe_key);
not_public!(preserve in custody::preserve: fn incident_from, fn apply_spec);
not_public!(unfinished in custody::unfinished: type Unfinished, fn temp_file);
not_public!(clock in custody::clock: fn host_name, fn user_name);

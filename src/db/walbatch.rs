//! A VFS for the group-commit writer's connection that hands each commit's
//! log frames to the kernel in one `pwrite`.
//!
//! SQLite writes a WAL frame as two `pwrite`s (its 24-byte header, then the
//! page), so a commit of 46 pages costs 92 system calls, each walking
//! ext4's buffered-write path for one or two page-cache pages: a fifth of
//! the writer thread's time. This VFS wraps the default one and, for the log
//! file only, gathers writes that continue one another in memory and writes
//! them at once:
//! - when the page of a commit frame (header field "database size" ≠ 0) has
//!   been added: the end of the transaction's frames, so a failed write is
//!   still an error of that `xWrite` and the commit fails as it would have;
//! - before anything that could look at the file through this handle (read,
//!   size, truncate, sync, lock, file control, close) and before a write that
//!   does not continue the gathered ones;
//! - at the latest before the commit is published: SQLite writes the frames,
//!   then the wal-index header in two copies with a memory barrier
//!   (`xShmBarrier` of the database file) between them, and readers only use
//!   a header whose two copies agree. The barrier flushes what this thread
//!   still holds, so no reader can see a frame that is not in the file.
//!
//! Every other call goes to the default VFS unchanged, so locking and the
//! shared memory are exactly SQLite's own. Frames become visible to other
//! connections at the same point as before (the header); with
//! `synchronous = normal` the log is not synced at commit, before or now.

use std::{
    cell::RefCell,
    ffi::{c_int, c_void, CStr},
    ptr,
    sync::OnceLock,
};

use rusqlite::ffi;

/// The name connections open with (`Connection::open_with_flags_and_vfs`).
pub const NAME: &str = "fengqiao-walbatch";
const C_NAME: &CStr = c"fengqiao-walbatch";

/// A frame header's size; its bytes 4..8 are the commit flag.
const FRAME_HEADER: usize = 24;
/// The most one `xWrite` of the default VFS takes: it masks the length
/// with 0x1ffff, as no page of SQLite's is larger.
const MAX_WRITE: usize = 0x1f000;
/// Gathered bytes written at once even without a commit frame (a large
/// transaction whose pages spill to the log before it commits).
const MAX_GATHERED: usize = 4 << 20;

/// Our file: SQLite allocates `szOsFile` bytes, this header followed by the
/// default VFS's own file object.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// The log file's gathered writes; null for every other file.
    log: *mut Gathered,
}

#[derive(Default)]
struct Gathered {
    start: i64,
    bytes: Vec<u8>,
    /// The last frame header gathered marks a commit.
    commit: bool,
}

thread_local! {
    /// Log files of this thread holding gathered bytes (one, in practice).
    static HOLDING: RefCell<Vec<*mut File>> = const { RefCell::new(Vec::new()) };
}

struct Registered {
    real: *mut ffi::sqlite3_vfs,
}
// SAFETY: the default VFS is a static object of the SQLite library, valid
// and thread-safe for the life of the process.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

static REGISTERED: OnceLock<Result<Registered, c_int>> = OnceLock::new();

/// Registers the VFS (once per process); its name for opening connections.
pub fn register() -> rusqlite::Result<&'static str> {
    let r = REGISTERED.get_or_init(|| unsafe {
        let real = ffi::sqlite3_vfs_find(ptr::null());
        if real.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        // A copy of the default VFS with our file objects: its other methods
        // take the VFS only to read its name or nothing at all.
        let mut vfs: ffi::sqlite3_vfs = *real;
        vfs.zName = C_NAME.as_ptr();
        vfs.szOsFile = std::mem::size_of::<File>() as c_int + (*real).szOsFile;
        vfs.pNext = ptr::null_mut();
        vfs.xOpen = Some(x_open);
        let rc = ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0);
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        Ok(Registered { real })
    });
    match r {
        Ok(_) => Ok(NAME),
        Err(rc) => Err(rusqlite::Error::SqliteFailure(ffi::Error::new(*rc), Some("registering the WAL VFS".into()))),
    }
}

fn real_vfs() -> *mut ffi::sqlite3_vfs {
    match REGISTERED.get() {
        Some(Ok(r)) => r.real,
        _ => unreachable!("files are opened only through a registered VFS"),
    }
}

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let f = file as *mut File;
    let real = (f as *mut u8).add(std::mem::size_of::<File>()) as *mut ffi::sqlite3_file;
    (*f).base.pMethods = ptr::null();
    (*f).real = real;
    (*f).log = ptr::null_mut();
    (*real).pMethods = ptr::null();
    let vfs = real_vfs();
    let rc = ((*vfs).xOpen.expect("xOpen"))(vfs, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite closes only a file whose methods are set: ours are not.
        if !(*real).pMethods.is_null() {
            ((*(*real).pMethods).xClose.expect("xClose"))(real);
        }
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_WAL != 0 {
        (*f).log = Box::into_raw(Box::default());
    }
    (*f).base.pMethods = &METHODS;
    ffi::SQLITE_OK
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

/// The default VFS's file and its methods.
unsafe fn real(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, &'static ffi::sqlite3_io_methods) {
    let r = (*(file as *mut File)).real;
    (r, &*(*r).pMethods)
}

/// Writes what `file` (a log file or any other: then nothing) gathered.
unsafe fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file as *mut File;
    let log = (*f).log;
    if log.is_null() || (*log).bytes.is_empty() {
        return ffi::SQLITE_OK;
    }
    let (r, m) = real(file);
    let g = &mut *log;
    let mut rc = ffi::SQLITE_OK;
    let mut at = 0;
    while at < g.bytes.len() && rc == ffi::SQLITE_OK {
        let n = (g.bytes.len() - at).min(MAX_WRITE);
        rc = (m.xWrite.expect("xWrite"))(r, g.bytes[at..].as_ptr() as *const c_void, n as c_int, g.start + at as i64);
        at += n;
    }
    // Written or failed, the bytes are not written again: a failed write is
    // this call's error and SQLite abandons the transaction.
    g.bytes.clear();
    g.commit = false;
    HOLDING.with(|h| h.borrow_mut().retain(|p| *p != f));
    rc
}

/// Before a commit is published: writes whatever this thread's log files
/// hold. A failure here cannot be reported to SQLite (the barrier returns
/// nothing) and publishing frames that are not in the file would corrupt
/// what readers see, so the process stops instead: the commit was never
/// answered, and recovery on the next open ends the log before it.
unsafe fn flush_thread() {
    while let Some(f) = HOLDING.with(|h| h.borrow().last().copied()) {
        let rc = flush(f as *mut ffi::sqlite3_file);
        if rc != ffi::SQLITE_OK {
            tracing::error!(rc, "writing the SQLite log failed before a commit was published; stopping");
            std::process::abort();
        }
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let rc = flush(file);
    let f = file as *mut File;
    let (r, m) = real(file);
    let closed = (m.xClose.expect("xClose"))(r);
    if !(*f).log.is_null() {
        drop(Box::from_raw((*f).log));
        (*f).log = ptr::null_mut();
    }
    if rc != ffi::SQLITE_OK {
        rc
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(file: *mut ffi::sqlite3_file, buf: *mut c_void, amt: c_int, off: i64) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xRead.expect("xRead"))(r, buf, amt, off)
}

unsafe extern "C" fn x_write(file: *mut ffi::sqlite3_file, buf: *const c_void, amt: c_int, off: i64) -> c_int {
    let f = file as *mut File;
    let log = (*f).log;
    if log.is_null() || amt <= 0 {
        let (r, m) = real(file);
        return (m.xWrite.expect("xWrite"))(r, buf, amt, off);
    }
    let g = &mut *log;
    if !g.bytes.is_empty() && off != g.start + g.bytes.len() as i64 {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if g.bytes.is_empty() {
        g.start = off;
        HOLDING.with(|h| h.borrow_mut().push(f));
    }
    let data = std::slice::from_raw_parts(buf as *const u8, amt as usize);
    g.bytes.extend_from_slice(data);
    if data.len() == FRAME_HEADER {
        g.commit = data[4..8] != [0, 0, 0, 0];
        return ffi::SQLITE_OK;
    }
    if g.commit || g.bytes.len() >= MAX_GATHERED {
        return flush(file);
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xTruncate.expect("xTruncate"))(r, size)
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xSync.expect("xSync"))(r, flags)
}

unsafe extern "C" fn x_file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xFileSize.expect("xFileSize"))(r, size)
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xLock.expect("xLock"))(r, level)
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xUnlock.expect("xUnlock"))(r, level)
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (r, m) = real(file);
    (m.xCheckReservedLock.expect("xCheckReservedLock"))(r, out)
}

unsafe extern "C" fn x_file_control(file: *mut ffi::sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    let rc = flush(file);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let (r, m) = real(file);
    (m.xFileControl.expect("xFileControl"))(r, op, arg)
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(file);
    (m.xSectorSize.expect("xSectorSize"))(r)
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (r, m) = real(file);
    (m.xDeviceCharacteristics.expect("xDeviceCharacteristics"))(r)
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (r, m) = real(file);
    (m.xShmMap.expect("xShmMap"))(r, page, size, extend, out)
}

unsafe extern "C" fn x_shm_lock(file: *mut ffi::sqlite3_file, offset: c_int, n: c_int, flags: c_int) -> c_int {
    flush_thread();
    let (r, m) = real(file);
    (m.xShmLock.expect("xShmLock"))(r, offset, n, flags)
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    flush_thread();
    let (r, m) = real(file);
    (m.xShmBarrier.expect("xShmBarrier"))(r)
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    flush_thread();
    let (r, m) = real(file);
    (m.xShmUnmap.expect("xShmUnmap"))(r, delete)
}

unsafe extern "C" fn x_fetch(file: *mut ffi::sqlite3_file, off: i64, amt: c_int, out: *mut *mut c_void) -> c_int {
    let (r, m) = real(file);
    (m.xFetch.expect("xFetch"))(r, off, amt, out)
}

unsafe extern "C" fn x_unfetch(file: *mut ffi::sqlite3_file, off: i64, p: *mut c_void) -> c_int {
    let (r, m) = real(file);
    (m.xUnfetch.expect("xUnfetch"))(r, off, p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};

    fn writer(path: &std::path::Path) -> Connection {
        let c = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register().unwrap()).unwrap();
        c.execute_batch("pragma journal_mode = wal; pragma synchronous = normal; pragma wal_autocheckpoint = 0")
            .unwrap();
        c
    }

    /// Readers on other threads (the default VFS) never see a committed
    /// row count that disagrees with the rows: every commit's frames are
    /// in the file before the commit is published. Checkpoints and log
    /// restarts run in between.
    #[test]
    fn readers_see_whole_commits_while_the_log_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch(
            "create table t (id integer primary key, pad text); create index t_pad on t(pad); \
             create table n (k integer primary key, v integer); insert into n values (1, 0);",
        )
        .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut readers = vec![];
        for _ in 0..2 {
            let (path, stop) = (path.clone(), stop.clone());
            readers.push(std::thread::spawn(move || {
                let r = Connection::open(&path).unwrap();
                let mut checks = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let (n, rows): (i64, i64) = r
                        .query_row("select (select v from n), (select count(*) from t)", [], |x| {
                            Ok((x.get(0)?, x.get(1)?))
                        })
                        .unwrap();
                    assert_eq!(n, rows, "a reader saw part of a commit");
                    checks += 1;
                }
                checks
            }));
        }
        let ck = Connection::open(&path).unwrap();
        for i in 0..400 {
            let tx = w.unchecked_transaction().unwrap();
            for j in 0..25 {
                tx.execute("insert into t (pad) values (?1)", [format!("{i}-{j}-{}", "x".repeat(200))]).unwrap();
            }
            tx.execute("update n set v = v + 25", []).unwrap();
            tx.commit().unwrap();
            if i % 50 == 49 {
                // A full checkpoint lets the next commit start the log over.
                ck.query_row("pragma wal_checkpoint(truncate)", [], |_| Ok(())).unwrap();
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        drop(w);
        let fresh = Connection::open(&path).unwrap();
        let rows: i64 = fresh.query_row("select count(*) from t", [], |x| x.get(0)).unwrap();
        assert_eq!(rows, 400 * 25);
        let ok: String = fresh.query_row("pragma integrity_check", [], |x| x.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }

    /// A transaction larger than the page cache spills frames to the log
    /// before it commits, reads them back and rewrites some: the gathered
    /// writes are flushed before each read, and the result is intact.
    #[test]
    fn a_transaction_that_spills_to_the_log_reads_back_what_it_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let w = writer(&path);
        w.execute_batch("pragma cache_size = 20; create table t (id integer primary key, pad text)").unwrap();
        let tx = w.unchecked_transaction().unwrap();
        for i in 0..3000 {
            tx.execute("insert into t (pad) values (?1)", [format!("{i}{}", "y".repeat(300))]).unwrap();
        }
        tx.execute("update t set pad = pad || 'z' where id % 7 = 0", []).unwrap();
        tx.commit().unwrap();
        let r = Connection::open(&path).unwrap();
        let z: i64 = r.query_row("select count(*) from t where pad like '%z'", [], |x| x.get(0)).unwrap();
        assert_eq!(z, 3000 / 7);
        let ok: String = r.query_row("pragma integrity_check", [], |x| x.get(0)).unwrap();
        assert_eq!(ok, "ok");
    }
}

import Foundation
import HTTPTypes
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `fieldsyncd` per data directory. SQLite would keep two processes'
/// writes apart, but each server caches what it authenticated and which
/// policy a user has: a device revoked or a grant withdrawn through one would
/// still be honoured by the other's caches. `DATA/fieldsyncd.lock` holds an
/// advisory lock (released by the kernel if the process dies) and the
/// holder's process ID, for the message the second server gives.
final class DataDirectoryLock: Sendable {
    private let descriptor: Mutex<Int32>

    init(directory: URL) throws {
        let url = directory.appendingPathComponent("fieldsyncd.lock")
        let fd = open(url.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ServerError(.internalError, "Cannot open \(url.path) (\(String(cString: strerror(errno)))). Check the data directory's permissions.",
                              status: .internalServerError)
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            close(fd)
            throw ServerError(.unavailable, "Another fieldsyncd\(holder.isEmpty ? "" : " (process \(holder))") is using the data directory \(directory.path). "
                              + "Stop it first, or give this one its own --data.", status: .serviceUnavailable)
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        descriptor = Mutex(fd)
    }

    /// Lets the next server in; safe to call more than once.
    func release() {
        descriptor.withLock { fd in
            guard fd >= 0 else { return }
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

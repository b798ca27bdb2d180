import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One command at a time per home directory (DESIGN §5: one sync per home).
/// Every command that reads and writes the replica holds this lock, so a
/// `set` during a `sync` waits instead of being overwritten.
final class HomeLock {
    private let fd: Int32

    init(home: URL, wait seconds: Double = 30) throws {
        let path = home.appendingPathComponent("home.lock").path
        fd = open(path, O_RDWR | O_CREAT, 0o600)
        guard fd >= 0 else {
            let reason = errno
            try Self.refuseFile(at: home)
            if reason == ENOENT, !FileManager.default.fileExists(atPath: home.path) {
                // The first thing a new user meets: say what is missing, not "check permissions".
                throw CLIError.other("This home (\(home.path)) does not exist, so no device is enrolled there. Run 'fieldcli enroll --server URL --code CODE' (it creates it), or give the right --home.")
            }
            throw CLIError.other("Cannot open the lock file in \(home.path) (\(String(cString: strerror(reason)))). Check its permissions.")
        }
        let deadline = Date().addingTimeInterval(seconds)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            if Date() > deadline {
                close(fd)
                throw CLIError.other("Another fieldcli command (perhaps a sync) is using \(home.path). Wait for it to finish and try again.")
            }
            usleep(50_000)
        }
    }

    /// A home given as a file: a usage error that says so (before any "cannot open" or Foundation error).
    static func refuseFile(at home: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: home.path, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw CLIError.usage("\(home.path) is a file, not a directory. Give this device's home directory with --home or FIELDCLI_HOME.")
        }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

public import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Files with secrets or case data are 0600, their folders 0700 (DESIGN §7).
public enum FileSecurity {
    /// Creates a directory (and parents) with mode 0700, or tightens an existing one.
    public static func makePrivateDirectory(_ url: URL) throws {
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: url.path)
    }

    /// Writes a file atomically with mode 0600 and fsyncs it.
    public static func writePrivate(_ data: Data, to url: URL) throws {
        let temporary = url.appendingPathExtension("tmp")
        // A leftover temporary from a crash may have another mode: start afresh, exclusively.
        unlink(temporary.path)
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path]) }
        func fail() -> CocoaError {
            close(fd)
            unlink(temporary.path)
            return CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        guard fchmod(fd, 0o600) == 0 else { throw fail() }
        var offset = 0
        while offset < data.count {
            let written = data.withUnsafeBytes { buffer in Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset) }
            if written <= 0 { throw fail() }
            offset += written
        }
        guard fsync(fd) == 0 else { throw fail() }
        guard close(fd) == 0 else {
            unlink(temporary.path)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        guard rename(temporary.path, url.path) == 0 else {
            unlink(temporary.path)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: url.path])
        }
        // The rename itself must reach the disk before callers act on it (say, scrub the old file).
        syncDirectory(of: url)
    }

    /// Overwrites a file's bytes with zeros (synced), then removes it, so its
    /// blocks do not keep the old content. Nothing to do if it is not there.
    public static func overwriteAndRemove(_ url: URL) throws {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        if let handle = try? FileHandle(forWritingTo: url) {
            let size = (try? handle.seekToEnd()) ?? 0
            try? handle.seek(toOffset: 0)
            if size > 0 { handle.write(Data(count: Int(size))) }
            try? handle.synchronize()
            try? handle.close()
        }
        try FileManager.default.removeItem(at: url)
    }

    /// Flushes a directory entry change (create, rename, link) to disk.
    public static func syncDirectory(of url: URL) {
        let fd = open(url.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Appends to a file with mode 0600 and fsyncs it.
    public static func appendPrivate(_ data: Data, to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path]) }
        defer { close(fd) }
        _ = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
        fsync(fd)
    }

    /// The permission bits of a file.
    public static func mode(of url: URL) -> Int? {
        (try? FileManager.default.attributesOfItem(atPath: url.path)[.posixPermissions]) as? Int
    }

    /// Makes an existing secret file owner-only (0600) again if a restore or copy
    /// loosened it; a missing file is left missing.
    public static func restrictIfLoosened(_ url: URL) throws {
        guard let mode = mode(of: url), mode & 0o777 != 0o600 else { return }
        guard chmod(url.path, 0o600) == 0 else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
        }
    }
}

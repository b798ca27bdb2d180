import Crypto
import CryptoExtras
import Foundation
import SyncServer

/// The device key file (`device.key`, 0600): either the 32-byte AES key
/// itself, or that key sealed under a key derived from a passphrase with
/// scrypt (DESIGN §7). Without the passphrase a stolen laptop's store is
/// unreadable: the key file beside it is no help.
///
/// Wrapped form: `FSK1`, log2(N), r, p, a 16-byte salt, then the AES-GCM
/// sealed key (nonce, 32 bytes, tag), with the header as associated data.
enum DeviceKeyFile {
    static let magic = Array("FSK1".utf8)
    /// scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s here; OWASP's minimum).
    static let defaultLog2N: UInt8 = 15
    static let blockSize: UInt8 = 8
    static let parallelism: UInt8 = 1
    static let minimumPassphraseLength = 8

    enum Contents {
        case plain(SymmetricKey)
        case wrapped(header: [UInt8], sealed: [UInt8])
    }

    static func parse(_ data: Data, path: String) throws -> Contents {
        if data.count == 32 { return .plain(SymmetricKey(data: data)) }
        let bytes = Array(data)
        let headerLength = magic.count + 3 + 16
        guard bytes.count == headerLength + 12 + 32 + 16, Array(bytes.prefix(magic.count)) == magic else {
            throw CLIError.other("The device key \(path) is damaged. Restore it from backup or enroll this device again.")
        }
        return .wrapped(header: Array(bytes.prefix(headerLength)), sealed: Array(bytes.dropFirst(headerLength)))
    }

    static func isWrapped(_ data: Data) -> Bool { data.count != 32 }

    /// The key, asking for the passphrase only if the file is wrapped.
    static func unwrap(_ contents: Contents, passphrase: () throws -> String) throws -> SymmetricKey {
        switch contents {
        case .plain(let key):
            return key
        case .wrapped(let header, let sealed):
            let secret = try passphrase()
            let log2N = header[magic.count], r = header[magic.count + 1], p = header[magic.count + 2]
            guard (10...20).contains(log2N), (1...16).contains(r), (1...4).contains(p) else {
                throw CLIError.other("The device key file has unsupported scrypt parameters. Restore it from backup or enroll again.")
            }
            let salt = header.suffix(16)
            let wrapping = try derive(secret, salt: Array(salt), log2N: log2N, r: r, p: p)
            do {
                let box = try AES.GCM.SealedBox(combined: sealed)
                return SymmetricKey(data: try AES.GCM.open(box, using: wrapping, authenticating: header))
            } catch {
                throw CLIError(.other, "The passphrase is wrong: the device key cannot be opened with it.", code: "wrongPassphrase")
            }
        }
    }

    /// The file bytes for `key`, wrapped when a passphrase is given.
    static func encode(_ key: SymmetricKey, passphrase: String?) throws -> Data {
        let raw = key.withUnsafeBytes { Data($0) }
        guard let passphrase else { return raw }
        var salt = [UInt8](repeating: 0, count: 16)
        var generator = SystemRandomNumberGenerator()
        for index in salt.indices { salt[index] = UInt8.random(in: .min ... .max, using: &generator) }
        let header = magic + [defaultLog2N, blockSize, parallelism] + salt
        let wrapping = try derive(passphrase, salt: salt, log2N: defaultLog2N, r: blockSize, p: parallelism)
        guard let sealed = try AES.GCM.seal(raw, using: wrapping, authenticating: header).combined else {
            throw CLIError.other("Could not encrypt the device key.")
        }
        return Data(header) + sealed
    }

    /// Replaces the key file atomically, then overwrites the old file's blocks
    /// so an unwrapped key does not linger on disk. A crash leaves either file
    /// complete; a leftover `.old` is scrubbed by `scrubLeftovers`.
    static func replace(_ url: URL, with data: Data) throws {
        let old = url.appendingPathExtension("old")
        scrub(old)
        if FileManager.default.fileExists(atPath: url.path) {
            try FileManager.default.linkItem(at: url, to: old)
            FileSecurity.syncDirectory(of: url)
        }
        // Renames the new file into place and syncs the directory: only then is the old one scrubbed.
        try FileSecurity.writePrivate(data, to: url)
        scrub(old)
    }

    /// Scrubs what an interrupted rewrite can leave: the old key (`.old`) and
    /// a new one that never got renamed into place (`.tmp`).
    static func scrubLeftovers(_ url: URL) {
        scrub(url.appendingPathExtension("old"))
        scrub(url.appendingPathExtension("tmp"))
    }

    private static func scrub(_ url: URL) {
        guard FileManager.default.fileExists(atPath: url.path) else { return }
        // Still a link to the live key file (a crash before the rename): unlink only.
        let live = url.deletingPathExtension()
        if let linked = inode(url), linked == inode(live) {
            try? FileManager.default.removeItem(at: url)
            return
        }
        try? FileSecurity.overwriteAndRemove(url)
    }

    private static func inode(_ url: URL) -> UInt64? {
        var info = stat()
        return stat(url.path, &info) == 0 ? UInt64(info.st_ino) : nil
    }

    static func checkNewPassphrase(_ passphrase: String) throws {
        guard passphrase.count >= minimumPassphraseLength else {
            throw CLIError.usage("A passphrase needs at least \(minimumPassphraseLength) characters; a few words you can remember work well.")
        }
    }

    private static func derive(_ passphrase: String, salt: [UInt8], log2N: UInt8, r: UInt8, p: UInt8) throws -> SymmetricKey {
        try KDF.Scrypt.deriveKey(from: Array(passphrase.utf8), salt: salt, outputByteCount: 32,
                                 rounds: 1 << Int(log2N), blockSize: Int(r), parallelism: Int(p))
    }
}

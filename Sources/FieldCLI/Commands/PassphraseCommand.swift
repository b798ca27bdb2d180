import ArgumentParser
import Foundation
import SyncCore

struct PassphraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passphrase",
        abstract: "Protect this device's key with a passphrase, change it, or remove it.",
        discussion: """
            The local store is encrypted under a device key kept in the home directory. With a passphrase, \
            that key file is sealed (scrypt + AES-GCM), so a lost laptop's store cannot be read without it. \
            Every command then asks for the passphrase on the terminal, or reads FIELDCLI_PASSPHRASE. \
            There is no recovery: a forgotten passphrase means enrolling again (unsynced changes are lost).
            """,
        subcommands: [PassphraseSetCommand.self, PassphraseRemoveCommand.self, PassphraseStatusCommand.self])

    struct Result: Encodable {
        var passphraseProtected: Bool
        /// The server's policy asks for one (read from the sealed store; with a sealed key and no
        /// passphrase given it is not read, and a sealed key meets it anyway).
        var passphraseRequired: Bool
    }

    /// Opens the store (asking for the current passphrase if there is one) without the policy gate of Workspace.open.
    static func open(_ context: CLIContext) throws -> (HomeLock, LocalStore, Bool) {
        let lock = try HomeLock(home: context.home)
        let store = try LocalStore(home: context.home, create: false, passphrase: context.devicePassphrase)
        guard let (replica, _) = try store.loadReplica() else {
            throw CLIError.other("This home (\(context.home.path)) is not enrolled. Run 'fieldcli enroll --server URL --code CODE'.")
        }
        return (lock, store, replica.policy.requiresDevicePassphrase)
    }
}

struct PassphraseSetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Set or change the passphrase (new one asked twice on the terminal, or FIELDCLI_NEW_PASSPHRASE).")

    func run() async throws {
        let context = CLIContext.current
        let (lock, store, required) = try PassphraseCommand.open(context)
        let secret = try context.newDevicePassphrase()
        try store.rewriteKey(passphrase: secret)
        withExtendedLifetime(lock) {}
        context.emit(PassphraseCommand.Result(passphraseProtected: true, passphraseRequired: required)) {
            store.keyIsWrapped ? "Passphrase changed." : "The device key is now protected by your passphrase."
        }
    }
}

struct PassphraseRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Store the device key without a passphrase again (refused when the server requires one).")

    func run() async throws {
        let context = CLIContext.current
        let (lock, store, required) = try PassphraseCommand.open(context)
        guard !required else {
            throw CLIError(.refused, "The server's policy requires a passphrase on this device's key; it stays.", code: "passphraseRequired")
        }
        if store.keyIsWrapped { try store.rewriteKey(passphrase: nil) }
        withExtendedLifetime(lock) {}
        context.emit(PassphraseCommand.Result(passphraseProtected: false, passphraseRequired: false)) {
            "The device key is no longer protected by a passphrase: anyone with this home directory can read the store."
        }
    }
}

struct PassphraseStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Whether the device key is protected and whether the server requires it.")

    func run() async throws {
        let context = CLIContext.current
        // Whether the key is sealed shows in its file: checking a laptop must not need its passphrase.
        let keyURL = context.home.appendingPathComponent(LocalStore.keyFileName)
        if let key = try? Data(contentsOf: keyURL), DeviceKeyFile.isWrapped(key),
           (context.environment["FIELDCLI_PASSPHRASE"] ?? "").isEmpty {
            context.emit(PassphraseCommand.Result(passphraseProtected: true, passphraseRequired: false)) {
                "The device key is protected by a passphrase."
            }
            return
        }
        let (lock, store, required) = try PassphraseCommand.open(context)
        withExtendedLifetime(lock) {}
        let result = PassphraseCommand.Result(passphraseProtected: store.keyIsWrapped, passphraseRequired: required)
        context.emit(result) {
            let state = result.passphraseProtected ? "protected by a passphrase" : "not protected by a passphrase"
            return "The device key is \(state)." + (required ? " The server requires one." : "")
        }
    }
}

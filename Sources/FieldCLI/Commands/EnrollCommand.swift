import ArgumentParser
import Foundation
import GRDB
import SyncCore
import SyncServer

struct EnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enroll this device with a one-time code from an admin.",
        discussion: "The server issues a device token (stored encrypted) and a replica ID. Then run 'fieldcli sync'.")

    @Option(help: "The server URL, e.g. https://sync.gemeente.nl (or FIELDSYNC_SERVER).")
    var server: String?

    @Option(help: "The one-time enrollment code from 'fieldcli admin enroll-code USER'.")
    var code: String

    @Option(help: "A name for this device, shown to admins (default: the host name).")
    var name: String?

    @Flag(help: "Replace an existing enrollment in this home (wipes its local store; refused while it holds unsynced changes).")
    var force = false

    @Flag(help: "With --force: wipe even changes that never reached the server (they are lost).")
    var discardUnsynced = false

    @Flag(help: ArgumentHelp("Protect the device key with a passphrase from the start (asked on the terminal, or FIELDCLI_NEW_PASSPHRASE).",
                             discussion: "Setting FIELDCLI_NEW_PASSPHRASE alone also does this."))
    var passphrase = false

    func run() async throws {
        let context = CLIContext.current
        guard let server = server ?? context.environment["FIELDSYNC_SERVER"] else {
            throw ValidationError("Give --server URL (or set FIELDSYNC_SERVER).")
        }
        // Before any prompt or server call: --force must not quietly cost a worker their notes
        // (the advice for a damaged store is "enroll again").
        if force, !discardUnsynced { try Enrollment.refuseToDropUnsyncedWork(context) }
        // Asked before the server takes the one-time code, so a typo costs nothing.
        let wantsPassphrase = passphrase || !(context.environment["FIELDCLI_NEW_PASSPHRASE"] ?? "").isEmpty
        let secret = wantsPassphrase ? try context.newDevicePassphrase() : nil
        let result = try await Enrollment.enroll(context: context, server: server, code: code,
                                                 name: name ?? ProcessInfo.processInfo.hostName, force: force, passphrase: secret)
        context.emit(result) {
            var text = "Enrolled as \(result.user) (\(result.role)); device \(result.deviceName), replica \(result.replica)."
            if result.passphraseRequired && !result.passphraseProtected {
                text += " The server requires a passphrase on the device key: run 'fieldcli passphrase set', then 'fieldcli sync'."
            } else {
                text += " Run 'fieldcli sync' to fetch your households."
            }
            return text
        }
    }
}

enum Enrollment {
    struct Result: Encodable {
        var user: String
        var role: String
        var deviceID: String
        var deviceName: String
        var replica: UInt32
        var server: String
        var passphraseProtected: Bool
        var passphraseRequired: Bool
    }

    static func enroll(context: CLIContext, server: String, code: String, name: String, force: Bool,
                       passphrase: String? = nil) async throws -> Result {
        try HomeLock.refuseFile(at: context.home)
        try FileSecurity.makePrivateDirectory(context.home)
        let lock = try HomeLock(home: context.home)
        defer { withExtendedLifetime(lock) {} }
        let databaseURL = context.home.appendingPathComponent(LocalStore.databaseName)
        let enrolled = FileManager.default.fileExists(atPath: databaseURL.path)
        if enrolled, !force {
            throw CLIError(.usage, "This home is already enrolled. Use another --home, or --force to replace it (its local data is wiped).",
                           code: "alreadyEnrolled")
        }
        let client = try HTTPClient(server: server, token: nil)
        let response: EnrollResponse = try await client.json("POST", "v1/enroll", body: EnrollRequest(code: code, name: name),
                                                             action: "Enrollment")
        // Only now that the server took the code is the old enrollment replaced;
        // a key file left without a store (an interrupted wipe) goes too, so
        // the new store always gets a fresh key under the passphrase asked for.
        try LocalStore.wipe(home: context.home)
        let store = try LocalStore(home: context.home, create: true, newPassphrase: passphrase)
        let identity = DeviceIdentityRecord(server: server, deviceID: response.deviceID, replica: response.replica, user: response.user,
                                            role: response.role, name: name, enrolledAt: response.serverTime, maxBody: response.maxBody)
        try store.saveIdentity(identity, token: response.token)
        let replica = ClientReplica(replica: ReplicaID(response.replica), user: response.user, schema: .defaultHouseholdPlan(),
                                    policy: response.policy)
        try store.save(replica, previous: nil)
        return Result(user: response.user, role: response.role, deviceID: response.deviceID, deviceName: name,
                      replica: response.replica, server: server, passphraseProtected: store.keyIsWrapped,
                      passphraseRequired: response.policy.requiresDevicePassphrase)
    }

    /// Refuses `enroll --force` while the home's store holds changes that
    /// never reached the server. Pending ops are counted straight from the
    /// file (their rows need no key to count); rejected ones live in the
    /// sealed replica row, read only with a passphrase from the environment,
    /// never a prompt. A file that is not a database has nothing to save.
    static func refuseToDropUnsyncedWork(_ context: CLIContext) throws {
        let databaseURL = context.home.appendingPathComponent(LocalStore.databaseName)
        guard FileManager.default.fileExists(atPath: databaseURL.path) else { return }
        guard let file = try? DatabaseQueue(path: databaseURL.path),
              let pending = try? file.read({ try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM pending") }) else { return }
        try? file.close()
        let advice = "Run 'fieldcli sync' first (and 'fieldcli rejected' for refused ones); to wipe them anyway, add --discard-unsynced."
        var rejected = 0
        do {
            let store = try LocalStore(home: context.home, create: false, passphrase: {
                guard let value = context.environment["FIELDCLI_PASSPHRASE"], !value.isEmpty else { throw LocalStore.passphraseNotGiven }
                return value
            })
            rejected = (try store.loadReplica())?.0.rejected.count ?? 0
        } catch let error as CLIError where error.code == "passphraseRequired" || error.code == "wrongPassphrase" {
            if pending == 0 { throw CLIError.usage("This home's device key has a passphrase, so its rejected changes cannot be counted without it. "
                                 + "Set FIELDCLI_PASSPHRASE to check, or add --discard-unsynced to wipe whatever is there.") }
        } catch {
            // A key that is missing or damaged, or rows that do not decrypt: nothing more can be read.
        }
        if pending + rejected > 0 {
            throw CLIError.usage("This home holds \(pending + rejected) change(s) that are not on the server (\(pending) pending, \(rejected) rejected). \(advice)")
        }
    }
}

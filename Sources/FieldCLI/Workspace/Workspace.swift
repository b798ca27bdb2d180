import Foundation
import SyncCore

/// An open home directory: the lock, the local store and the replica.
/// Commands get one, change the replica through SyncCore, and save.
struct Workspace {
    let context: CLIContext
    let store: LocalStore
    let identity: DeviceIdentityRecord
    var replica: ClientReplica
    private var loaded: LocalStore.Loaded
    private let lock: HomeLock

    static func open(_ context: CLIContext) throws -> Workspace {
        let lock = try HomeLock(home: context.home)
        let store = try LocalStore(home: context.home, create: false, passphrase: context.devicePassphrase)
        guard let identity = try store.identity(), let (replica, loaded) = try store.loadReplica() else {
            throw CLIError.other("This home (\(context.home.path)) is not enrolled. Run 'fieldcli enroll --server URL --code CODE'.")
        }
        if replica.policy.requiresDevicePassphrase, !store.keyIsWrapped {
            throw CLIError(.refused, "The server's policy requires a passphrase on this device's key. Run 'fieldcli passphrase set' first; nothing else runs until then.",
                           code: "passphraseRequired")
        }
        return Workspace(context: context, store: store, identity: identity, replica: replica, loaded: loaded, lock: lock)
    }

    /// Persists the replica (one transaction). Call before reporting success.
    mutating func save() throws {
        loaded = try store.save(replica, previous: loaded)
    }

    var now: UInt64 { context.now }

    /// Finds a household by full ID or a unique prefix of at least 4 characters.
    func household(_ text: String) throws -> HouseholdID {
        if let id = HouseholdID(text) { return id }
        let lower = text.lowercased()
        guard lower.count >= 4 else {
            throw CLIError.usage("\(text) is not a household ID. Give the full ID or at least its first 4 characters ('fieldcli households' lists them).")
        }
        let matches = replica.households.filter { $0.description.hasPrefix(lower) }
        switch matches.count {
        case 1: return matches[0]
        case 0: throw CLIError(.usage, "No household on this device starts with \(text). 'fieldcli households' lists what this device holds.", code: "notFound")
        default: throw CLIError.usage("\(text) matches \(matches.count) households; give more characters.")
        }
    }

    func purpose(_ text: String) throws -> Purpose {
        let purpose = Purpose(text.uppercased())
        guard let info = replica.schema.purpose(purpose), !info.serverOnly else {
            throw CLIError.usage("Unknown purpose \(text). Purposes: \(replica.schema.devicePurposes.map(\.rawValue).joined(separator: ", ")).")
        }
        return purpose
    }

    /// The household's label, if this device may read REGIE.
    func label(of household: HouseholdID) -> String? {
        replica.view(SegmentKey(household: household, purpose: .regie))?.value(of: "label")
    }
}

/// Turns SyncCore's refusals into exit code 2 with the message naming the
/// purpose. What the user typed wrong (a field, a value, an ID) is a usage
/// error, exit 1: exit 2 means policy (decision 16).
func refusalToCLI(_ error: SyncCoreError) -> CLIError {
    switch error.code {
    case .refused where error.refusal == .unknownField: return CLIError(.usage, error.message, code: "unknownField")
    case .refused where error.refusal == .invalid: return CLIError(.usage, error.message, code: "invalid")
    case .refused: return CLIError(.refused, error.message, code: error.refusal?.rawValue ?? "refused")
    case .notFound: return CLIError(.usage, error.message, code: "notFound")
    default: return CLIError(.other, error.message)
    }
}

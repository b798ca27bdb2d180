public import Foundation

/// Read or write access to a purpose; write implies read.
public enum Access: String, Hashable, Sendable, Codable, Comparable, CaseIterable {
    case read
    case write

    public static func < (lhs: Access, rhs: Access) -> Bool { lhs == .read && rhs == .write }
    public func satisfies(_ needed: Access) -> Bool { self >= needed }
}

/// The server's policy file: roles → purposes (DESIGN §4).
public struct PolicyFile: Hashable, Sendable, Codable {
    public var format: Int
    public var version: Int
    public var roles: [String: [Purpose: Access]]
    /// Roles that manage the system and read no case content without a grant
    /// or an audited break-glass.
    public var adminRoles: [String]
    /// Involvement under these purposes is shown to viewers without the
    /// purpose only as "a professional is involved" (DESIGN §2).
    public var sensitivePurposes: [Purpose]
    /// Whether devices must protect their local key with a passphrase
    /// (DESIGN §7); a device without one syncs nothing until it sets one.
    public var requireDevicePassphrase: Bool

    public init(format: Int = 1, version: Int, roles: [String: [Purpose: Access]], adminRoles: [String],
                sensitivePurposes: [Purpose], requireDevicePassphrase: Bool = false) {
        self.format = format
        self.version = version
        self.roles = roles
        self.adminRoles = adminRoles
        self.sensitivePurposes = sensitivePurposes
        self.requireDevicePassphrase = requireDevicePassphrase
    }

    enum CodingKeys: String, CodingKey { case format, version, roles, adminRoles, sensitivePurposes, requireDevicePassphrase }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decodeIfPresent(Int.self, forKey: .format) ?? 1
        version = try c.decode(Int.self, forKey: .version)
        let raw = try c.decode([String: [String: Access]].self, forKey: .roles)
        roles = raw.mapValues { Dictionary(uniqueKeysWithValues: $0.map { (Purpose($0.key), $0.value) }) }
        adminRoles = try c.decodeIfPresent([String].self, forKey: .adminRoles) ?? ["admin"]
        sensitivePurposes = try c.decodeIfPresent([Purpose].self, forKey: .sensitivePurposes) ?? [.veil, .jb, .bwMo]
        requireDevicePassphrase = try c.decodeIfPresent(Bool.self, forKey: .requireDevicePassphrase) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(format, forKey: .format)
        try c.encode(version, forKey: .version)
        try c.encode(roles.mapValues { Dictionary(uniqueKeysWithValues: $0.map { ($0.key.rawValue, $0.value) }) }, forKey: .roles)
        try c.encode(adminRoles, forKey: .adminRoles)
        try c.encode(sensitivePurposes, forKey: .sensitivePurposes)
        try c.encode(requireDevicePassphrase, forKey: .requireDevicePassphrase)
    }

    /// Loads and checks a policy file against a schema.
    public static func load(json data: Data, schema: Schema) throws(SyncCoreError) -> PolicyFile {
        let policy: PolicyFile
        do {
            policy = try JSONDecoder().decode(PolicyFile.self, from: data)
        } catch {
            throw SyncCoreError(.invalidPolicy, "The policy file is not valid: \(error). Fix it and start again.")
        }
        guard policy.format == 1 else {
            throw SyncCoreError(.invalidPolicy, "Policy format \(policy.format) is not supported (expected 1).")
        }
        for (role, purposes) in policy.roles {
            for purpose in purposes.keys {
                guard let info = schema.purpose(purpose) else {
                    throw SyncCoreError(.invalidPolicy, "Role \(role) names purpose \(purpose), which the schema does not list.")
                }
                guard !info.serverOnly else {
                    throw SyncCoreError(.invalidPolicy, "Role \(role) names the server-only purpose \(purpose); no device may hold it.")
                }
            }
        }
        for role in policy.adminRoles where !(policy.roles[role]?.isEmpty ?? true) {
            throw SyncCoreError(.invalidPolicy, "Admin role \(role) must not give case purposes; use grants instead.")
        }
        return policy
    }

    public func purposes(of role: String) -> [Purpose: Access] { roles[role] ?? [:] }
    public func isAdminRole(_ role: String) -> Bool { adminRoles.contains(role) }
}

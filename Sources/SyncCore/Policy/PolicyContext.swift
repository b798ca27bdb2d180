/// A user's assignment to a household, optionally ending.
public struct Assignment: Hashable, Sendable, Codable {
    public var household: HouseholdID
    /// Milliseconds since 1970; the assignment holds while `now < until`.
    public var until: UInt64?
    public init(household: HouseholdID, until: UInt64? = nil) {
        self.household = household
        self.until = until
    }
}

/// A grant of a purpose to a user, for all assigned households or one.
public struct Grant: Hashable, Sendable, Codable {
    public var purpose: Purpose
    public var access: Access
    /// Nil: every household the user is assigned to.
    public var household: HouseholdID?
    /// Milliseconds since 1970; the grant holds while `now < until`.
    public var until: UInt64?
    public init(purpose: Purpose, access: Access, household: HouseholdID? = nil, until: UInt64? = nil) {
        self.purpose = purpose
        self.access = access
        self.household = household
        self.until = until
    }
}

/// A consent withdrawal recorded by an admin or regisseur: it blocks a purpose
/// (or every purpose but REGIE, when `purpose` is nil) of one household.
public struct ConsentBlock: Hashable, Sendable, Codable {
    public var household: HouseholdID
    public var purpose: Purpose?
    public init(household: HouseholdID, purpose: Purpose? = nil) {
        self.household = household
        self.purpose = purpose
    }
}

/// One line of a household's involvement list: who is involved, under which
/// purposes, and how to reach them. Never case content (DOMAIN §3.3).
public struct Involvement: Hashable, Sendable, Codable {
    public var user: String
    public var role: String
    /// The purposes the viewer may know about; empty when restricted.
    public var purposes: [Purpose]
    public var contact: String
    /// True when the worker is involved under a sensitive purpose the viewer
    /// does not hold: the viewer learns only that a professional is involved.
    public var restricted: Bool
    public init(user: String, role: String, purposes: [Purpose], contact: String, restricted: Bool) {
        self.user = user
        self.role = role
        self.purposes = purposes
        self.contact = contact
        self.restricted = restricted
    }
}

/// What a device knows of its user's rights, sent in every sync response and
/// evaluated by the same code on the server and on the device (DESIGN §4).
public struct PolicyContext: Hashable, Sendable, Codable {
    public var user: String
    public var role: String
    /// The role's purposes from the policy file.
    public var rolePurposes: [Purpose: Access]
    public var assignments: [Assignment] {
        didSet { assignmentIndex = Self.index(assignments) }
    }
    public var grants: [Grant]
    public var consentBlocks: [ConsentBlock]
    /// Increases with every policy change the server makes.
    public var version: UInt64
    /// The server's clock when the context was made (ms since 1970).
    public var serverTime: UInt64
    /// Per assigned household, who else is involved.
    public var involvement: [HouseholdID: [Involvement]]
    /// The device must protect its local key with a passphrase (PolicyFile.requireDevicePassphrase).
    public var requiresDevicePassphrase: Bool
    /// Assignment by household, for O(1) policy checks (derived from `assignments`).
    private(set) var assignmentIndex: [HouseholdID: Int] = [:]

    static func index(_ assignments: [Assignment]) -> [HouseholdID: Int] {
        var index: [HouseholdID: Int] = [:]
        index.reserveCapacity(assignments.count)
        for (position, assignment) in assignments.enumerated() where index[assignment.household] == nil {
            index[assignment.household] = position
        }
        return index
    }

    /// The assignment of a household, if any.
    public func assignment(of household: HouseholdID) -> Assignment? {
        assignmentIndex[household].map { assignments[$0] }
    }

    public init(user: String, role: String, rolePurposes: [Purpose: Access], assignments: [Assignment] = [],
                grants: [Grant] = [], consentBlocks: [ConsentBlock] = [], version: UInt64 = 0, serverTime: UInt64 = 0,
                involvement: [HouseholdID: [Involvement]] = [:], requiresDevicePassphrase: Bool = false) {
        self.user = user
        self.role = role
        self.rolePurposes = rolePurposes
        self.assignments = assignments
        self.grants = grants
        self.consentBlocks = consentBlocks
        self.version = version
        self.serverTime = serverTime
        self.involvement = involvement
        self.requiresDevicePassphrase = requiresDevicePassphrase
        assignmentIndex = Self.index(assignments)
    }

    enum CodingKeys: String, CodingKey {
        case user, role, rolePurposes, assignments, grants, consentBlocks, version, serverTime, involvement, requiresDevicePassphrase
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        user = try c.decode(String.self, forKey: .user)
        role = try c.decode(String.self, forKey: .role)
        let raw = try c.decodeIfPresent([String: Access].self, forKey: .rolePurposes) ?? [:]
        rolePurposes = Dictionary(uniqueKeysWithValues: raw.map { (Purpose($0.key), $0.value) })
        assignments = try c.decodeIfPresent([Assignment].self, forKey: .assignments) ?? []
        grants = try c.decodeIfPresent([Grant].self, forKey: .grants) ?? []
        consentBlocks = try c.decodeIfPresent([ConsentBlock].self, forKey: .consentBlocks) ?? []
        version = try c.decodeIfPresent(UInt64.self, forKey: .version) ?? 0
        serverTime = try c.decodeIfPresent(UInt64.self, forKey: .serverTime) ?? 0
        let rawInvolvement = try c.decodeIfPresent([String: [Involvement]].self, forKey: .involvement) ?? [:]
        var involvement: [HouseholdID: [Involvement]] = [:]
        for (key, value) in rawInvolvement {
            guard let id = HouseholdID(key) else {
                throw DecodingError.dataCorruptedError(forKey: .involvement, in: c, debugDescription: "not a household UUID")
            }
            involvement[id] = value
        }
        self.involvement = involvement
        requiresDevicePassphrase = try c.decodeIfPresent(Bool.self, forKey: .requiresDevicePassphrase) ?? false
        assignmentIndex = Self.index(assignments)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(user, forKey: .user)
        try c.encode(role, forKey: .role)
        try c.encode(Dictionary(uniqueKeysWithValues: rolePurposes.map { ($0.key.rawValue, $0.value) }), forKey: .rolePurposes)
        try c.encode(assignments, forKey: .assignments)
        try c.encode(grants, forKey: .grants)
        try c.encode(consentBlocks, forKey: .consentBlocks)
        try c.encode(version, forKey: .version)
        try c.encode(serverTime, forKey: .serverTime)
        try c.encode(Dictionary(uniqueKeysWithValues: involvement.map { ($0.key.description, $0.value) }), forKey: .involvement)
        try c.encode(requiresDevicePassphrase, forKey: .requiresDevicePassphrase)
    }
}

extension PolicyContext {
    /// A digest of everything but the server time and version: equal contexts, equal digests.
    public var digest: Digest {
        var copy = self
        copy.serverTime = 0
        copy.version = 0
        var writer = BinaryWriter()
        copy.encode(to: &writer)
        return Digest(Array(ContentHash128.of(writer.bytes).bytes.prefix(8)))
    }
}

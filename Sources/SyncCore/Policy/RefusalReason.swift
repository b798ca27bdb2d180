/// Why an op was rejected or an access refused (DESIGN §4). Extensible: a
/// struct with static members, so adding a reason never breaks a client.
public struct RefusalReason: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The user is not assigned to the household (or the assignment ended).
    public static let notAssigned = RefusalReason("notAssigned")
    /// Neither the role nor a current grant gives the purpose.
    public static let purposeNotGranted = RefusalReason("purposeNotGranted")
    /// The purpose is readable but not writable for this user.
    public static let readOnly = RefusalReason("readOnly")
    /// The schema has no such field, log or collection under this purpose.
    public static let unknownField = RefusalReason("unknownField")
    /// The field is retired: it may be read but not written.
    public static let fieldRetired = RefusalReason("fieldRetired")
    /// The segment was erased; ops for the old epoch are void.
    public static let erased = RefusalReason("erased")
    /// The op is malformed: forged dot or author, bad value, bad reference.
    public static let invalid = RefusalReason("invalid")
    /// The op builds on an op that was rejected.
    public static let dependsOnRejected = RefusalReason("dependsOnRejected")
    /// A known dot arrived with different content: the device must re-enroll.
    public static let dotReuse = RefusalReason("dotReuse")
    /// A consent withdrawal blocks this purpose for this household.
    public static let consentWithdrawn = RefusalReason("consentWithdrawn")

    public static let all: [RefusalReason] = [
        .notAssigned, .purposeNotGranted, .readOnly, .unknownField, .fieldRetired, .erased,
        .invalid, .dependsOnRejected, .dotReuse, .consentWithdrawn,
    ]

    /// What the user can do about it, for messages (names no personal data).
    public var advice: String {
        switch self {
        case .notAssigned: return "You are not assigned to this household. Ask a regisseur or admin to assign you."
        case .purposeNotGranted: return "Your role has no access to this purpose. Ask an admin for a grant if your work needs it."
        case .readOnly: return "You may read this purpose but not write it. Ask an admin for a write grant."
        case .unknownField: return "This name is not in the schema the server uses. Check its spelling: 'fieldcli set' given a wrong name lists the fields you may write."
        case .fieldRetired: return "This field is retired and can no longer be written."
        case .erased: return "This part of the household was erased on the server; the write cannot be kept."
        case .invalid: return "The change was malformed and could not be accepted."
        case .dependsOnRejected: return "The change builds on another change that was rejected."
        case .dotReuse: return "The server already had this change's ID with other content: this device's store is older than what it sent (restored from a backup?). The text is shown here: write it again (new changes get new IDs now)."
        case .consentWithdrawn: return "Consent for this purpose was withdrawn for this household."
        default: return "The change was refused."
        }
    }
}

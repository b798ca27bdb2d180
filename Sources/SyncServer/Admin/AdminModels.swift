public import SyncCore

/// The JSON bodies of the admin API (`/v1/admin/…`), shared with `fieldcli admin`.
public enum AdminAPI {
    public struct AddUser: Codable, Sendable {
        public var name: String
        public var role: String
        public var contact: String?
        public init(name: String, role: String, contact: String?) {
            self.name = name
            self.role = role
            self.contact = contact
        }
    }

    public struct UserInfo: Codable, Sendable, Hashable {
        public var name: String
        public var role: String
        public var contact: String
        public var disabled: Bool
        public var devices: Int
    }

    public struct EnrollmentCode: Codable, Sendable {
        public var user: String
        public var code: String
        public var expiresAt: UInt64
    }

    public struct Assign: Codable, Sendable {
        public var user: String
        public var household: HouseholdID
        public var until: UInt64?
        public init(user: String, household: HouseholdID, until: UInt64?) {
            self.user = user
            self.household = household
            self.until = until
        }
    }

    public struct GrantRequest: Codable, Sendable {
        public var user: String
        public var purpose: Purpose
        public var access: Access
        public var household: HouseholdID?
        public var until: UInt64?
        public init(user: String, purpose: Purpose, access: Access, household: HouseholdID?, until: UInt64?) {
            self.user = user
            self.purpose = purpose
            self.access = access
            self.household = household
            self.until = until
        }
    }

    public struct GrantResult: Codable, Sendable {
        public var user: String
        public var purpose: Purpose
        public var access: Access
        public var household: HouseholdID?
        public var until: UInt64?
        /// An admin granted themself access: flagged in the audit log.
        public var selfGrant: Bool
    }

    public struct RevokeGrant: Codable, Sendable {
        public var user: String
        public var purpose: Purpose
        public var household: HouseholdID?
        public init(user: String, purpose: Purpose, household: HouseholdID?) {
            self.user = user
            self.purpose = purpose
            self.household = household
        }
    }

    public struct AccessEntry: Codable, Sendable, Hashable {
        public var user: String
        public var role: String
        public var purposes: [PurposeAccess]
        public var assignedUntil: UInt64?
    }

    public struct PurposeAccess: Codable, Sendable, Hashable {
        public var purpose: Purpose
        public var access: Access
        /// "role" or "grant", with any expiry.
        public var basis: String
        public var until: UInt64?
    }

    public struct DeviceInfo: Codable, Sendable, Hashable {
        public var id: String
        public var name: String
        public var user: String
        public var replica: UInt32
        public var enrolledAt: UInt64
        public var lastSyncAt: UInt64?
        /// How many server changes the device has not pulled yet.
        public var lag: UInt64
        public var revoked: Bool
        /// Pushed ops stamped more than 5 minutes ahead of the server's clock.
        public var clockSkew: Int
    }

    public struct CreateHousehold: Codable, Sendable {
        public var label: String?
        public init(label: String?) { self.label = label }
    }

    public struct HouseholdInfo: Codable, Sendable, Hashable {
        public var id: HouseholdID
        public var createdAt: UInt64
        public var createdBy: String
        public var segments: [SegmentInfo]
        public var assigned: [String]
        /// Other households whose REGIE address or label matches this one's (two workers may
        /// have onboarded the same family offline). IDs only: the admin sees no content.
        public var likelyDuplicates: [HouseholdID] = []
    }

    public struct SegmentInfo: Codable, Sendable, Hashable {
        public var purpose: Purpose
        public var epoch: UInt32
        public var elements: Int
    }

    public struct ConflictEntry: Codable, Sendable, Hashable {
        public var household: HouseholdID
        public var purpose: Purpose
        public var name: String
        public var item: String?
        public var kind: String
        public var valueIDs: [String]
        /// Only with a grant or an audited break-glass.
        public var values: [ConflictValue]?
    }

    public struct Resolve: Codable, Sendable {
        public var household: HouseholdID
        public var field: String
        public var pick: String?
        public var value: String?
        public var breakGlass: String?
        public init(household: HouseholdID, field: String, pick: String?, value: String?, breakGlass: String?) {
            self.household = household
            self.field = field
            self.pick = pick
            self.value = value
            self.breakGlass = breakGlass
        }
    }

    public struct ResolveResult: Codable, Sendable {
        public var household: HouseholdID
        public var field: String
        public var valueID: String
        public var superseded: [String]
    }

    public struct RejectEntry: Codable, Sendable, Hashable {
        public var id: Int64
        public var household: HouseholdID
        public var purpose: Purpose
        public var user: String
        public var device: String
        public var reason: String
        public var kind: String
        public var name: String?
        public var at: UInt64
        public var status: String
    }

    public struct RejectAction: Codable, Sendable {
        public var id: Int64
        public var status: String
        public var message: String
    }

    public struct Erase: Codable, Sendable {
        public var household: HouseholdID
        public var purpose: Purpose?
        public init(household: HouseholdID, purpose: Purpose?) {
            self.household = household
            self.purpose = purpose
        }
    }

    public struct EraseResult: Codable, Sendable {
        public var household: HouseholdID
        public var erased: [ErasedSegment]
        /// When there was nothing left to erase: the earlier erasures this follows up.
        public var erasedBefore: [ErasedSegment]
        /// Devices that reported holding an erased segment and have not purged it yet.
        public var devicesStillHolding: [DeviceHolding]
        /// Quarantined ops erased with it, including those of purposes with no segment (refused
        /// before any op of theirs landed); nil from a server before this field.
        public var quarantinedErased: Int?
    }

    public struct ErasedSegment: Codable, Sendable, Hashable {
        public var purpose: Purpose
        public var oldEpoch: UInt32
        public var newEpoch: UInt32
    }

    public struct DeviceHolding: Codable, Sendable, Hashable {
        public var device: String
        public var name: String
        public var user: String
        public var purposes: [Purpose]
    }

    public struct ConsentBlockRequest: Codable, Sendable {
        public var household: HouseholdID
        public var purpose: Purpose?
        public init(household: HouseholdID, purpose: Purpose?) {
            self.household = household
            self.purpose = purpose
        }
    }

    public struct Done: Codable, Sendable {
        public var ok: Bool
        public var message: String
        public init(_ message: String) {
            ok = true
            self.message = message
        }
    }
}

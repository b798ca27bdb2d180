import Foundation
@testable import SyncCore

/// Shared fixtures for SyncCore tests.
enum Fixture {
    static let schema = Schema.defaultHouseholdPlan()
    static let policyFile = PolicyFile.defaultPolicy(schema: schema)
    static let household = HouseholdID("6f1c2a9e-0b7d-4c1e-9a55-3f0d2b8c7e11")!
    static let otherHousehold = HouseholdID("0a4e8c12-77f3-4b9d-8e21-5c6a9d0f1b32")!
    static let day: UInt64 = 86_400_000
    static let t0: UInt64 = 1_790_000_000_000

    static func context(user: String, role: String, households: [HouseholdID] = [household],
                        grants: [Grant] = [], until: UInt64? = nil) -> PolicyContext {
        PolicyContext(user: user, role: role, rolePurposes: policyFile.purposes(of: role),
                      assignments: households.map { Assignment(household: $0, until: until) }, grants: grants)
    }
}

extension Array {
    func shuffled(seed: inout SplitMix64) -> [Element] { shuffled(using: &seed) }
}

extension Data {
    /// Whether `needle` occurs in these bytes.
    func containsBytes(_ needle: String) -> Bool { range(of: Data(needle.utf8)) != nil }
}

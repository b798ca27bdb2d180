public import Foundation

extension Schema {
    /// The default household-plan schema shipped in
    /// `Sources/SyncCore/Resources/household-plan.schema.json` (DOMAIN §3.3, §4.2).
    public static func defaultHouseholdPlan() -> Schema {
        guard let url = Bundle.module.url(forResource: "household-plan.schema", withExtension: "json"),
              let data = try? Data(contentsOf: url),
              let schema = try? Schema.load(json: data) else {
            preconditionFailure("The bundled household-plan schema is missing or invalid; rebuild FieldSync.")
        }
        return schema
    }

    /// The bundled schema file's raw JSON.
    public static func defaultHouseholdPlanJSON() -> Data {
        Bundle.module.url(forResource: "household-plan.schema", withExtension: "json").flatMap { try? Data(contentsOf: $0) } ?? Data()
    }
}

extension PolicyFile {
    /// The default role → purpose policy (DESIGN §4, DOMAIN §1.2).
    public static func defaultPolicy(schema: Schema) -> PolicyFile {
        guard let url = Bundle.module.url(forResource: "default-policy", withExtension: "json"),
              let data = try? Data(contentsOf: url),
              let policy = try? PolicyFile.load(json: data, schema: schema) else {
            preconditionFailure("The bundled default policy is missing or invalid; rebuild FieldSync.")
        }
        return policy
    }
}

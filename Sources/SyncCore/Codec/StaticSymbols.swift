/// Strings every message is likely to carry, known to both sides before the
/// first byte (part of protocol version 1; never reordered, only appended).
/// They are referenced by index, so a single contact-log append does not pay
/// for spelling out "contactlog" and "huisbezoek".
enum StaticSymbols {
    static let table: [String] = [
        // Purposes
        "REGIE", "WMO", "JW", "JB", "PW_WERK", "PW_INK", "WGS", "BW_MO", "VEIL", "LP", "INFORMEEL", "TOEZICHT", "MONITOR",
        "SERVER_ONLY",
        // Logs, collections and kinds
        "contactlog", "doelen", "afspraken", "inzet", "signals", "evaluations", "regisseur_history", "consent_events",
        "escalations", "huisbezoek", "telefoon", "overleg", "signaal", "keukentafelgesprek", "spreekuur", "evaluatie", "nazorg",
        // REGIE fields
        "label", "area", "address", "members", "status", "regisseur", "regie_mode", "triage", "domains_in_scope",
        "shared_goals", "agreements", "next_evaluation_date", "urgent_flag", "urgent_reason", "next_contact",
        // Reasons and purge kinds
        "notAssigned", "purposeNotGranted", "readOnly", "unknownField", "fieldRetired", "erased", "invalid",
        "dependsOnRejected", "dotReuse", "consentWithdrawn", "notReadable", "",
        // Roles and access
        "buurtcoach", "wmo-consulent", "jeugdconsulent", "schuldhulp", "werkcoach", "regisseur", "admin",
    ]

    /// Each string's first index (the table holds "regisseur" twice; the first wins).
    static let index: [ByteKey: UInt32] = {
        var result: [ByteKey: UInt32] = [:]
        for (i, s) in table.enumerated() where result[ByteKey(s)] == nil { result[ByteKey(s)] = UInt32(i) }
        return result
    }()
}

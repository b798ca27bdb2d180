import Foundation
import SyncCore

/// A realistic home-visit batch (issue 6): one contact log of 200–600
/// characters, 2–6 field edits, sometimes a goal, in one household.
enum HomeVisit {
    static let words = ["gezin", "woning", "huur", "budget", "afspraak", "begeleiding", "zorg", "school", "contact", "moeder",
                        "netwerk", "buurt", "wijkteam", "indicatie", "gemeente", "uitkering", "schulden", "energie", "regeling",
                        "huisarts", "gesprek", "veilig", "thuis", "overleg", "plan", "doel", "evaluatie", "mantelzorger",
                        "dagbesteding", "vervoer", "wachtlijst", "opvoeding", "geregeld", "besproken", "volgende", "week"]
    static let fields = ["wmo_request", "wmo_investigation", "usual_help_context", "wmo_indication", "carer_load",
                         "agreements", "shared_goals", "domains_in_scope", "area", "next_contact"]

    static func text(_ rng: inout SplitMix64, length: ClosedRange<Int>) -> String {
        let target = Int.random(in: length, using: &rng)
        var text = ""
        while text.utf8.count < target - 12 { text += (text.isEmpty ? "" : " ") + words[Int.random(in: 0..<words.count, using: &rng)] }
        return text.prefix(1).uppercased() + text.dropFirst() + "."
    }

    /// Makes the visit's edits on the device; returns the text bytes it wrote.
    @discardableResult
    static func perform(on replica: inout ClientReplica, household: HouseholdID, rng: inout SplitMix64, wall: UInt64) throws -> Int {
        var raw = 0
        let log = text(&rng, length: 200...600)
        raw += log.utf8.count
        try replica.appendLog(household: household, purpose: .wmo, kind: "huisbezoek", occurredAt: wall - 3_600_000, text: log, wall: wall)
        for _ in 0..<Int.random(in: 2...6, using: &rng) {
            let field = fields[Int.random(in: 0..<fields.count, using: &rng)]
            let value = field == "next_contact" ? "2027-0\(Int.random(in: 1...9, using: &rng))-1\(Int.random(in: 0...9, using: &rng))"
                : text(&rng, length: 20...120)
            raw += value.utf8.count
            try replica.set(household: household, field: field, value: value, wall: wall)
        }
        if Int.random(in: 0..<10, using: &rng) < 3 {
            let goal = text(&rng, length: 20...50)
            raw += goal.utf8.count
            try replica.insertItem(household: household, purpose: .wmo, text: goal, wall: wall)
        }
        return raw
    }
}

import Foundation
import Testing
@testable import SyncCore

struct SchemaTests {
    @Test func defaultSchemaCoversThePurposes() {
        let schema = Fixture.schema
        for code in ["REGIE", "WMO", "JW", "WGS", "PW_WERK", "PW_INK", "VEIL", "INFORMEEL"] {
            #expect(schema.purpose(Purpose(code)) != nil, "missing \(code)")
            if code != "MONITOR" { #expect(schema.log("contactlog", purpose: Purpose(code)) != nil, "no contact log for \(code)") }
        }
        for name in ["label", "regisseur", "shared_goals", "agreements", "next_evaluation_date"] {
            #expect(schema.field(name)?.purpose == .regie, "\(name) should be REGIE")
        }
        #expect(schema.field("regisseur")?.invariant == "single")
        #expect(schema.purpose(.serverOnly)?.serverOnly == true)
        #expect(schema.field("bsn")?.purpose == .serverOnly)
        #expect(schema.contentHash.count == 64)
    }

    @Test func hashIsStableAcrossEncodings() throws {
        let schema = Fixture.schema
        let again = try Schema.load(json: MessageJSON.encode(schema))
        #expect(again.contentHash == schema.contentHash)
    }

    @Test(arguments: [
        ("{", "not valid JSON"),
        (#"{"name":"x","version":1}"#, "missing \"purposes\""),
        (#"{"name":"x","version":"one","purposes":[]}"#, "wrong type"),
        (#"{"name":"x","version":1,"purposes":[{"code":"REGIE"}],"fields":[{"name":"a","purpose":"WMO","type":"text"}]}"#, "names purpose WMO"),
        (#"{"name":"x","version":1,"purposes":[{"code":"REGIE"}],"fields":[{"name":"a","purpose":"REGIE","type":"text"},{"name":"a","purpose":"REGIE","type":"text"}]}"#, "listed twice"),
        (#"{"name":"x","version":1,"purposes":[{"code":"REGIE"}],"fields":[{"name":"Bad Name","purpose":"REGIE","type":"text"}]}"#, "snake_case"),
        (#"{"name":"x","version":1,"purposes":[{"code":"WMO"}]}"#, "REGIE"),
        (#"{"name":"x","version":1,"purposes":[{"code":"REGIE"}],"fields":[{"name":"a","purpose":"REGIE","type":"choice"}]}"#, "no options"),
    ])
    func malformedSchemaNamesTheProblem(json: String, expected: String) {
        do {
            _ = try Schema.load(json: Data(json.utf8))
            Issue.record("schema should not load")
        } catch {
            #expect(error.code == .invalidSchema)
            #expect(error.message.contains(expected), "message was: \(error.message)")
        }
    }

    @Test func typeChecks() throws {
        let schema = Fixture.schema
        #expect(schema.typeProblem("2026-02-29", for: schema.field("next_evaluation_date")!) != nil)
        #expect(schema.typeProblem("2028-02-29", for: schema.field("next_evaluation_date")!) == nil)
        #expect(schema.typeProblem("maybe", for: schema.field("urgent_flag")!) != nil)
        #expect(schema.typeProblem("active", for: schema.field("status")!) == nil)
        #expect(schema.typeProblem("gone", for: schema.field("status")!) != nil)
        // Empty clears any field but a worker reference.
        for name in ["next_evaluation_date", "urgent_flag", "status", "jw_intervention_level"] {
            #expect(schema.typeProblem("", for: schema.field(name)!) == nil, "\(name)")
        }
        let workerRef = try #require(schema.fields.first { $0.type == .workerRef })
        #expect(schema.typeProblem("", for: workerRef) != nil)
        // A number is digits with a sign and a decimal point, not whatever Double(_:) takes.
        let number = schema.field("jw_intervention_level")!
        for good in ["3", "-2", "+7", "2.5", "0.25"] { #expect(schema.typeProblem(good, for: number) == nil, "\(good)") }
        for bad in ["NaN", "nan", "inf", "-inf", "1e400", "1e3", "0x10", "-", "2.", ".5", "1.2.3", " 3", "drie"] {
            #expect(schema.typeProblem(bad, for: number) != nil, "\(bad)")
        }
    }

    @Test func hybridLogicalClock() {
        var clock = HybridLogicalClock()
        let a = clock.tick(wallMilliseconds: 1000)
        let b = clock.tick(wallMilliseconds: 1000)
        let c = clock.tick(wallMilliseconds: 999)
        #expect(a < b && b < c)
        #expect(b.logical == 1)
        // A remote stamp within the drift is followed…
        let followed = clock.observe(HLCTimestamp(milliseconds: 1000 + 60_000, logical: 3), wallMilliseconds: 1000)
        #expect(followed)
        let after = clock.tick(wallMilliseconds: 1000)
        #expect(after > HLCTimestamp(milliseconds: 61_000, logical: 3))
        // …one days ahead is flagged and not followed.
        let before = clock.last
        let skewed = clock.observe(HLCTimestamp(milliseconds: 1000 + 3 * Fixture.day, logical: 0), wallMilliseconds: 1000)
        #expect(!skewed)
        #expect(clock.last == before)
        // The logical counter saturates into the next millisecond.
        var saturating = HybridLogicalClock(last: HLCTimestamp(milliseconds: 5, logical: UInt16.max))
        let next = saturating.tick(wallMilliseconds: 5)
        #expect(next.milliseconds == 6 && next.logical == 0)
    }

    @Test func sha256KnownVectors() {
        #expect(SHA256Digest.hex(SHA256Digest.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Digest.hex(SHA256Digest.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        let long = Array(repeating: UInt8(ascii: "a"), count: 1_000_000)
        var streaming = SHA256Digest()
        for chunk in stride(from: 0, to: long.count, by: 777) { streaming.update(Array(long[chunk..<min(long.count, chunk + 777)])) }
        #expect(SHA256Digest.hex(streaming.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

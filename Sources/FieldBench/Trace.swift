import Foundation
import SyncCore
import SyncServer

/// A `gen_trace.py` workload trace (shared/bench/TRACE.md), held compactly:
/// event texts live in one byte arena and become Strings only when replayed.
struct Trace {
    enum Kind: UInt8 { case set, append, insert, delete, sync }

    struct Event {
        var kind: Kind
        var replica: UInt16
        var doc: UInt32
        /// Field index (set), list index (insert/delete), contact kind index (append).
        var argument: Int32
        /// Seconds since 1970 of an append's `at`.
        var at: UInt32
        var textOffset: UInt32
        var textLength: UInt32
    }

    var fieldNames: [String] = []
    var fieldPurposes: [String] = []
    var replicaCount = 0
    var householdCount = 0
    var assignments: [[Int]] = []
    var events: [Event] = []
    var arena: [UInt8] = []
    var contactKinds: [String] = ["huisbezoek", "telefoon", "overleg", "signaal"]
    var stats: [String: Any] = [:]

    func text(_ event: Event) -> String {
        arena.withUnsafeBufferPointer { buffer in
            String(decoding: UnsafeBufferPointer(rebasing: buffer[Int(event.textOffset)..<Int(event.textOffset + event.textLength)]), as: UTF8.self)
        }
    }

    var contactlogDigest: String? { stats["contactlog_digest"] as? String }

    static func load(path: String) throws -> Trace {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        if path.hasSuffix(".gz") { bytes = try Gzip.decompress(bytes, limit: 4 << 30) }
        var trace = Trace()
        var replicaIndex: [String: Int] = [:]
        var docIndex: [String: Int] = [:]
        var fieldIndex: [String: Int] = [:]
        var start = 0
        var lineNumber = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != 0x0A { end += 1 }
            defer { start = end + 1 }
            guard end > start else { continue }
            lineNumber += 1
            let line = Data(bytes[start..<end])
            guard let object = try JSONSerialization.jsonObject(with: line) as? [String: Any], let kind = object["kind"] as? String else {
                throw BenchError("line \(lineNumber) of \(path) is not a JSON object with a kind")
            }
            switch kind {
            case "header":
                guard (object["version"] as? Int) == 1 else { throw BenchError("\(path) is not a version 1 trace") }
                trace.replicaCount = object["replicas"] as? Int ?? 0
                trace.householdCount = object["households"] as? Int ?? 0
                for (i, field) in ((object["fields"] as? [[String: Any]]) ?? []).enumerated() {
                    let name = field["name"] as? String ?? "f\(i)"
                    trace.fieldNames.append(name)
                    trace.fieldPurposes.append(field["purpose"] as? String ?? "algemeen")
                    fieldIndex[name] = i
                }
                for r in 0..<trace.replicaCount { replicaIndex[String(format: "r%03d", r)] = r }
                for d in 0..<trace.householdCount { docIndex[String(format: "h%06d", d)] = d }
                let assigned = object["assignments"] as? [String: [String]] ?? [:]
                trace.assignments = (0..<trace.replicaCount).map { r in
                    (assigned[String(format: "r%03d", r)] ?? []).compactMap { docIndex[$0] }
                }
            case "summary", "stats":
                trace.stats = object
            default:
                guard let replicaName = object["replica"] as? String, let replica = replicaIndex[replicaName] else {
                    throw BenchError("line \(lineNumber): unknown replica")
                }
                var event = Event(kind: .sync, replica: UInt16(replica), doc: 0, argument: 0, at: 0, textOffset: 0, textLength: 0)
                if kind != "sync" {
                    guard let docName = object["doc"] as? String, let doc = docIndex[docName] else { throw BenchError("line \(lineNumber): unknown doc") }
                    event.doc = UInt32(doc)
                }
                func store(_ text: String) {
                    event.textOffset = UInt32(trace.arena.count)
                    trace.arena.append(contentsOf: Array(text.utf8))
                    event.textLength = UInt32(trace.arena.count) - event.textOffset
                }
                switch kind {
                case "set":
                    event.kind = .set
                    event.argument = Int32(fieldIndex[object["field"] as? String ?? ""] ?? 0)
                    store(object["value"] as? String ?? "")
                case "append":
                    event.kind = .append
                    let value = object["value"] as? [String: Any] ?? [:]
                    let contact = value["kind"] as? String ?? "huisbezoek"
                    if !trace.contactKinds.contains(contact) { trace.contactKinds.append(contact) }
                    event.argument = Int32(trace.contactKinds.firstIndex(of: contact)!)
                    event.at = UInt32((TraceTime.parse(value["at"] as? String ?? "") ?? 0) / 1000)
                    store(value["text"] as? String ?? "")
                case "insert":
                    event.kind = .insert
                    event.argument = Int32(object["index"] as? Int ?? 0)
                    store(object["value"] as? String ?? "")
                case "delete":
                    event.kind = .delete
                    event.argument = Int32(object["index"] as? Int ?? 0)
                case "sync":
                    event.kind = .sync
                default:
                    continue  // readers ignore what they do not know
                }
                trace.events.append(event)
            }
        }
        return trace
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `2025-01-06T09:12:40Z` ⇄ milliseconds.
enum TraceTime {
    static func parse(_ text: String) -> UInt64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text).map { UInt64($0.timeIntervalSince1970 * 1000) }
    }

    static func format(_ milliseconds: UInt64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}

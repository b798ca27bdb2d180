import Foundation
import SyncCore
import SyncServer

/// A `gen_trace.py` workload trace (shared/bench/TRACE.md), held compactly.
/// Texts become Strings once, at load: a replica takes its own writes' text by
/// reference (Swift strings are copy-on-write), as an application hands its
/// engine the text a user typed, so the replay holds no second copy of it.
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
        /// Index into `texts`.
        var text: UInt32
    }

    var fieldNames: [String] = []
    var fieldPurposes: [String] = []
    var replicaCount = 0
    var householdCount = 0
    var assignments: [[Int]] = []
    var events: [Event] = []
    var texts: [String] = []
    var contactKinds: [String] = ["huisbezoek", "telefoon", "overleg", "signaal"]
    var stats: [String: Any] = [:]

    func text(_ event: Event) -> String { texts[Int(event.text)] }

    /// Keeps a text and returns its index.
    mutating func store(_ text: String) -> UInt32 {
        texts.append(text)
        return UInt32(texts.count - 1)
    }

    var contactlogDigest: String? { stats["contactlog_digest"] as? String }

    static func load(path: String) throws -> Trace {
        var trace = Trace()
        var parser = LineParser()
        var pending: [UInt8] = []
        func feed(_ chunk: ArraySlice<UInt8>) throws {
            var start = chunk.startIndex
            for index in chunk.indices where chunk[index] == 0x0A {
                if pending.isEmpty {
                    try parser.parse(chunk[start..<index], into: &trace)
                } else {
                    pending.append(contentsOf: chunk[start..<index])
                    try parser.parse(pending[...], into: &trace)
                    pending.removeAll(keepingCapacity: true)
                }
                start = index + 1
            }
            pending.append(contentsOf: chunk[start...])
        }
        let file = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        if path.hasSuffix(".gz") {
            try Gzip.decompressStream(file, feed)
        } else {
            try feed(file[...])
        }
        if !pending.isEmpty { try parser.parse(pending[...], into: &trace) }
        trace.events = trace.events.trimmed()
        trace.texts = trace.texts.trimmed()
        return trace
    }

    /// Parses one JSON line at a time, keeping only the compact event.
    struct LineParser {
        var replicaIndex: [String: Int] = [:]
        var docIndex: [String: Int] = [:]
        var fieldIndex: [String: Int] = [:]
        var lineNumber = 0

        mutating func parse(_ line: ArraySlice<UInt8>, into trace: inout Trace) throws {
            lineNumber += 1
            guard !line.isEmpty else { return }
            // Event lines (all but the header and the stats) take the fast path.
            if trace.replicaCount > 0, let event = try EventScanner.scan(line, parser: &self, trace: &trace) {
                if let event { trace.events.append(event) }
                return
            }
            guard let object = try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any], let kind = object["kind"] as? String else {
                throw BenchError("line \(lineNumber) is not a JSON object with a kind")
            }
            switch kind {
            case "header":
                guard (object["version"] as? Int) == 1 else { throw BenchError("not a version 1 trace") }
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
                var event = Event(kind: .sync, replica: UInt16(replica), doc: 0, argument: 0, at: 0, text: 0)
                if kind != "sync" {
                    guard let docName = object["doc"] as? String, let doc = docIndex[docName] else { throw BenchError("line \(lineNumber): unknown doc") }
                    event.doc = UInt32(doc)
                }
                func store(_ text: String) { event.text = trace.store(text) }
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
                    return  // readers ignore what they do not know
                }
                trace.events.append(event)
            }
        }
    }
}

/// A scanner for event lines: flat JSON objects whose strings never hold
/// quotes, backslashes or control characters (TRACE.md), so no Foundation
/// objects are made and texts go straight into the arena.
enum EventScanner {
    /// nil: not an event line (use the general parser); .some(nil): an event to skip.
    static func scan(_ line: ArraySlice<UInt8>, parser: inout Trace.LineParser, trace: inout Trace) throws -> Trace.Event?? {
        var fields: [String: ArraySlice<UInt8>] = [:]
        var nested: [String: ArraySlice<UInt8>] = [:]
        var i = line.startIndex
        func skipSpace() { while i < line.endIndex, line[i] == 0x20 { i += 1 } }
        func string() -> ArraySlice<UInt8>? {
            guard i < line.endIndex, line[i] == 0x22 else { return nil }
            let start = i + 1
            var end = start
            while end < line.endIndex, line[end] != 0x22 { end += 1 }
            guard end < line.endIndex else { return nil }
            i = end + 1
            return line[start..<end]
        }
        func object(into target: inout [String: ArraySlice<UInt8>], allowNested: Bool) -> Bool {
            guard i < line.endIndex, line[i] == 0x7B else { return false }
            i += 1
            while true {
                skipSpace()
                if i < line.endIndex, line[i] == 0x7D { i += 1; return true }
                guard let key = string() else { return false }
                skipSpace()
                guard i < line.endIndex, line[i] == 0x3A else { return false }
                i += 1
                skipSpace()
                let name = String(decoding: key, as: UTF8.self)
                if i < line.endIndex, line[i] == 0x22 {
                    guard let value = string() else { return false }
                    target[name] = value
                } else if i < line.endIndex, line[i] == 0x7B {
                    var inner: [String: ArraySlice<UInt8>] = [:]
                    guard allowNested, object(into: &inner, allowNested: false) else { return false }
                    nested = inner
                } else {
                    let start = i
                    while i < line.endIndex, line[i] != 0x2C, line[i] != 0x7D { i += 1 }
                    target[name] = line[start..<i]
                }
                skipSpace()
                if i < line.endIndex, line[i] == 0x2C { i += 1 }
            }
        }
        guard object(into: &fields, allowNested: true), let kindBytes = fields["kind"] else { return nil }
        let kind = String(decoding: kindBytes, as: UTF8.self)
        guard kind == "set" || kind == "append" || kind == "insert" || kind == "delete" || kind == "sync" else {
            return kind == "header" || kind == "summary" || kind == "stats" ? nil : .some(nil)
        }
        func text(_ bytes: ArraySlice<UInt8>?) -> String { bytes.map { String(decoding: $0, as: UTF8.self) } ?? "" }
        guard let replica = parser.replicaIndex[text(fields["replica"])] else { throw BenchError("line \(parser.lineNumber): unknown replica") }
        var event = Trace.Event(kind: .sync, replica: UInt16(replica), doc: 0, argument: 0, at: 0, text: 0)
        if kind != "sync" {
            guard let doc = parser.docIndex[text(fields["doc"])] else { throw BenchError("line \(parser.lineNumber): unknown doc") }
            event.doc = UInt32(doc)
        }
        func store(_ bytes: ArraySlice<UInt8>?) { event.text = trace.store(text(bytes)) }
        func integer(_ bytes: ArraySlice<UInt8>?) -> Int32 { Int32(text(bytes).trimmingCharacters(in: .whitespaces)) ?? 0 }
        switch kind {
        case "set":
            event.kind = .set
            event.argument = Int32(parser.fieldIndex[text(fields["field"])] ?? 0)
            store(fields["value"])
        case "append":
            event.kind = .append
            let contact = text(nested["kind"])
            if !trace.contactKinds.contains(contact) { trace.contactKinds.append(contact) }
            event.argument = Int32(trace.contactKinds.firstIndex(of: contact)!)
            event.at = UInt32((TraceTime.parse(text(nested["at"])) ?? 0) / 1000)
            store(nested["text"])
        case "insert":
            event.kind = .insert
            event.argument = integer(fields["index"])
            store(fields["value"])
        case "delete":
            event.kind = .delete
            event.argument = integer(fields["index"])
        default:
            event.kind = .sync
        }
        return .some(event)
    }
}

extension Array {
    /// A copy without the spare capacity growth left (the trace is kept for the whole run).
    func trimmed() -> [Element] {
        var copy: [Element] = []
        copy.reserveCapacity(count)
        copy.append(contentsOf: self)
        return copy
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `2025-01-06T09:12:40Z` ⇄ milliseconds, by the civil-calendar formulas
/// (a formatter per call would dominate the replay's checks).
enum TraceTime {
    static func parse(_ text: String) -> UInt64? {
        let u = Array(text.utf8)
        guard u.count == 20, u[4] == 45, u[7] == 45, u[10] == 84, u[13] == 58, u[16] == 58, u[19] == 90 else { return nil }
        func number(_ range: Range<Int>) -> Int { u[range].reduce(0) { $0 * 10 + Int($1) - 48 } }
        let (y, m, d) = (number(0..<4), number(5..<7), number(8..<10))
        let seconds = daysFromCivil(y, m, d) * 86_400 + number(11..<13) * 3600 + number(14..<16) * 60 + number(17..<19)
        return UInt64(seconds) * 1000
    }

    static func format(_ milliseconds: UInt64) -> String {
        let total = Int(milliseconds / 1000)
        let (y, m, d) = civilFromDays(total / 86_400)
        let rest = total % 86_400
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, rest / 3600, (rest % 3600) / 60, rest % 60)
    }

    static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

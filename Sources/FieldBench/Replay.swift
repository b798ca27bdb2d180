import Foundation
import SyncCore
import SyncServer

/// `fieldbench replay`: replays a trace with SyncCore's real CRDTs, real sync
/// messages and the real binary codec, one in-process server copy per
/// household and one replica copy per assigned (replica, household)
/// (DESIGN §9, TRACE.md). Every sync is a SyncRequest/SyncResponse pair per
/// replica, encoded and decoded as on the wire.
public enum Replay {
    public struct Result: Codable, Sendable {
        public var engine = "fieldsync"
        public var trace = ""
        public var events = 0
        public var total_s = 0.0
        public var edit_s = 0.0
        public var encode_s = 0.0
        public var server_apply_s = 0.0
        public var client_apply_s = 0.0
        public var bytes_up = 0
        public var bytes_down = 0
        public var bytes_up_compressed = 0
        public var bytes_down_compressed = 0
        /// Every server copy's canonical encoding (TRACE.md: each copy's full encoding).
        public var final_state_bytes = 0
        /// The same copies as a device stores them: LZ4-compressed when smaller (decision 43).
        public var final_state_stored_bytes = 0
        public var peak_rss_mb = 0.0
        public var rss_after_load_mb = 0.0
        public var converged = false
        public var digest_ok = false
        public var diverged_copies = 0
        public var contactlog_entries = 0
        public var doelen_total = 0
        public var syncs = 0
        public var round_trips = 0
        public var clamped_inserts = 0
        public var skipped_deletes = 0
        public var conflicting_fields = 0
        public var rejected_ops = 0
        public var server_decode_s = 0.0
        public var server_merge_s = 0.0
        /// The server's part of `encode_s`: building the pull (deltas, snapshots, purges, hashes).
        public var server_pull_s = 0.0
        public var client_decode_s = 0.0
        public var client_merge_s = 0.0
        public var resnapshots = 0
        public var need_held_rounds = 0
    }

    /// The bench schema generated from the trace header: the `algemeen` fields,
    /// `contactlog` and `doelen` go to REGIE; the other trace purposes to WMO,
    /// JW, PW_WERK, WGS and VEIL (DESIGN §9).
    static func schema(for trace: Trace) throws -> Schema {
        let mapping: [String: Purpose] = ["algemeen": .regie, "wmo": .wmo, "jeugd": .jw, "participatie": .pwWerk,
                                          "schuldhulp": .wgs, "veiligheid": .veil]
        let purposes = Set(trace.fieldPurposes.map { mapping[$0] ?? .regie }).union([.regie]).sorted()
        return try Schema(name: "bench-trace", version: 1,
                          purposes: purposes.map { Schema.PurposeInfo(code: $0, title: $0.rawValue) },
                          fields: zip(trace.fieldNames, trace.fieldPurposes).map {
                              Schema.Field(name: $0.0, purpose: mapping[$0.1] ?? .regie, type: .text)
                          },
                          logs: [Schema.Log(name: "contactlog", purpose: .regie, kinds: trace.contactKinds)],
                          collections: [Schema.Collection(name: "doelen", purpose: .regie)])
    }

    static func household(_ index: Int) -> HouseholdID {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes[0] = 0xF5
        for i in 0..<8 { bytes[15 - i] = UInt8(truncatingIfNeeded: index >> (8 * i)) }
        return HouseholdID(bytes: bytes)!
    }

    public static func run(path: String) throws -> Result {
        let loading = Clock.now
        let trace = try Trace.load(path: path)
        let afterLoad = residentMegabytes()
        if ProcessInfo.processInfo.environment["FIELDBENCH_BREAKDOWN"] != nil {
            FileHandle.standardError.write(Data("bytes per value: LogEntry \(MemoryLayout<LogEntry>.stride) CollectionItem \(MemoryLayout<CollectionItem>.stride) RegisterValue \(MemoryLayout<RegisterValue<String>>.stride) MVR \(MemoryLayout<MultiValueRegister<String>>.stride) ElementKey \(MemoryLayout<ElementKey>.stride) ElementMeta \(MemoryLayout<ElementMeta>.stride) ServerSegment \(MemoryLayout<ServerSegment>.stride) SegmentState \(MemoryLayout<SegmentState>.stride) SyncOperation \(MemoryLayout<SyncOperation>.stride) Event \(MemoryLayout<Trace.Event>.stride)\n".utf8))
            FileHandle.standardError.write(Data("trace load: \(loading.elapsed) s, \(trace.events.count) events, \(trace.texts.count) texts\n".utf8))
        }
        var result = try run(trace)
        result.rss_after_load_mb = afterLoad
        result.trace = URL(fileURLWithPath: path).lastPathComponent
        return result
    }

    static func run(_ trace: Trace) throws -> Result {
        let schema = try schema(for: trace)
        var result = Result()
        result.events = trace.events.count
        let households = (0..<trace.householdCount).map(household)
        var server = InMemorySyncServer(schema: schema)
        for h in households { server.addHousehold(h) }
        let allPurposes = Dictionary(uniqueKeysWithValues: schema.purposes.map { ($0.code, Access.write) })
        var replicas: [ClientReplica] = []
        var devices: [DeviceIdentity] = []
        for r in 0..<trace.replicaCount {
            let user = String(format: "r%03d", r)
            let policy = PolicyContext(user: user, role: "bench", rolePurposes: allPurposes,
                                       assignments: trace.assignments[r].map { Assignment(household: households[$0]) })
            server.policies[user] = policy
            replicas.append(ClientReplica(replica: ReplicaID(UInt32(r + 2)), user: user, schema: schema, policy: policy))
            devices.append(DeviceIdentity(replica: ReplicaID(UInt32(r + 2)), user: user, deviceID: user))
        }
        var now: UInt64 = 1_736_150_400_000  // 2025-01-06T08:00:00Z, the trace's start
        var compressionTime = 0.0
        let breakdown = ProcessInfo.processInfo.environment["FIELDBENCH_BREAKDOWN"] != nil
        var upSections: [UInt8: Int] = [:]
        var downSections: [UInt8: Int] = [:]
        var (deltaText, deltaElements, deltaValues, deltaSegments, upText, upOps) = (0, 0, 0, 0, 0, 0)
        let started = Clock.now

        for event in trace.events {
            let r = Int(event.replica)
            let h = households[Int(event.doc)]
            now += 1
            if event.kind == .append { now = max(now, UInt64(event.at) * 1000) }
            let regie = SegmentKey(household: h, purpose: .regie)
            let t0 = Clock.now
            switch event.kind {
            case .set:
                try replicas[r].set(household: h, field: trace.fieldNames[Int(event.argument)], value: trace.text(event), wall: now)
            case .append:
                try replicas[r].appendLog(household: h, purpose: .regie, kind: trace.contactKinds[Int(event.argument)],
                                          occurredAt: UInt64(event.at) * 1000, text: trace.text(event), wall: now)
            case .insert:
                let live = replicas[r].liveCount(of: "doelen", in: regie)
                var index = Int(event.argument)
                if index > live { index = live; result.clamped_inserts += 1 }
                try replicas[r].insertItem(household: h, purpose: .regie, at: index, text: trace.text(event), wall: now)
            case .delete:
                let live = replicas[r].liveOrder(of: "doelen", in: regie)
                if Int(event.argument) < live.count {
                    try replicas[r].removeItem(household: h, purpose: .regie, item: live[Int(event.argument)].id, wall: now)
                } else {
                    result.skipped_deletes += 1
                }
            case .sync:
                result.syncs += 1
                for _ in 0..<1000 {
                    result.round_trips += 1
                    var t = Clock.now
                    let request = replicas[r].makeRequest()
                    let up = request.binaryEncoded()
                    result.encode_s += t.lap()
                    compressionTime += measure { result.bytes_up_compressed += compressedSize(up) }
                    result.bytes_up += up.count
                    t = Clock.now
                    var received = try SyncRequest(binary: up)
                    result.server_decode_s += t.lap()
                    let push = try server.push(&received, device: devices[r], now: now)
                    result.server_merge_s += t.lap()
                    result.server_apply_s = result.server_decode_s + result.server_merge_s
                    let response = try server.pull(received, device: devices[r], push: push, now: now)
                    let pulled = t.lap()
                    result.server_pull_s += pulled
                    let down = response.binaryEncoded()
                    result.encode_s += pulled + t.lap()
                    compressionTime += measure { result.bytes_down_compressed += compressedSize(down) }
                    result.bytes_down += down.count
                    if breakdown {
                        sectionSizes(down, into: &downSections)
                        sectionSizes(up, into: &upSections)
                        for patch in response.deltas {
                            deltaElements += patch.elements.count
                            for element in patch.elements {
                                switch element {
                                case .field(_, let register):
                                    deltaText += register.values.reduce(0) { $0 + $1.value.utf8.count }
                                    deltaValues += register.values.count
                                case .logEntry(_, let entry): deltaText += entry.body.text.utf8.count
                                case .item(_, let item): deltaText += item.text.values.reduce(0) { $0 + $1.value.utf8.count }
                                case .creation: break
                                }
                            }
                        }
                        deltaSegments += response.deltas.count
                        for op in received.ops {
                            switch op.payload {
                            case .set(_, let value, _): upText += value.utf8.count
                            case .append(_, let body): upText += body.text.utf8.count
                            case .insert(_, _, let text): upText += text.utf8.count
                            default: break
                            }
                        }
                        upOps += received.ops.count
                    }
                    t = Clock.now
                    let decodedResponse = try SyncResponse(binary: down)
                    result.client_decode_s += t.lap()
                    let outcome = replicas[r].apply(decodedResponse, wall: now)
                    result.client_merge_s += t.lap()
                    result.client_apply_s = result.client_decode_s + result.client_merge_s
                    result.rejected_ops += outcome.rejected.count
                    result.resnapshots += outcome.resnapshots.count
                    if response.needHeld { result.need_held_rounds += 1 }
                    if !outcome.needsAnotherRound { break }
                }
                continue
            }
            result.edit_s += t0.elapsed
        }
        result.total_s = started.elapsed - compressionTime
        if breakdown {
            FileHandle.standardError.write(Data("up sections: \(upSections.sorted { $0.key < $1.key })\ndown sections: \(downSections.sorted { $0.key < $1.key })\n".utf8))
            FileHandle.standardError.write(Data("up: \(upOps) ops, \(upText) text bytes; deltas: \(deltaSegments) segments, \(deltaElements) elements, \(deltaValues) field values, \(deltaText) text bytes\n".utf8))
        }
        result.peak_rss_mb = peakResidentMegabytes()
        if breakdown { FileHandle.standardError.write(Data("resident by mapping: \(residentByMapping())\n".utf8)) }
        // For heap profilers: the heap as the replay left it, before the checks build their own.
        if ProcessInfo.processInfo.environment["FIELDBENCH_EXIT_AFTER_REPLAY"] != nil { exit(0) }

        // Checks: every replica copy equals its server copy, byte for byte.
        var diverged = 0
        let serverKeys = Dictionary(grouping: server.allSegments.map(\.state.key), by: \.household)
        for r in 0..<trace.replicaCount {
            if !replicas[r].pending.isEmpty { diverged += 1 }
            for d in trace.assignments[r] {
                let keys = Set(serverKeys[households[d]] ?? [])
                    .union(replicas[r].confirmed.keys.filter { $0.household == households[d] })
                for key in keys where server.segment(key)?.state.canonicalBytes() != replicas[r].confirmed[key]?.canonicalBytes() {
                    diverged += 1
                }
            }
        }
        result.diverged_copies = diverged
        result.converged = diverged == 0
        var lines: [String] = []
        for (d, h) in households.enumerated() {
            guard let state = server.segment(SegmentKey(household: h, purpose: .regie))?.state else { continue }
            for entry in state.logs["contactlog"]?.entries ?? [] {
                lines.append([String(format: "h%06d", d), TraceTime.format(entry.body.occurredAt), entry.author, entry.body.kind, entry.body.text]
                    .joined(separator: "\t"))
            }
            result.doelen_total += state.collections["doelen"]?.liveCount ?? 0
            result.conflicting_fields += state.fields.values.filter(\.isConflict).count
        }
        result.contactlog_entries = lines.count
        lines.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let digest = SHA256Digest.hex(SHA256Digest.hash(Array(lines.joined(separator: "\n").utf8)))
        result.digest_ok = digest == trace.contactlogDigest
        for segment in server.allSegments {
            let canonical = segment.state.canonicalBytes()
            result.final_state_bytes += canonical.count
            result.final_state_stored_bytes += SegmentState.storedBytes(canonical: canonical).count
        }
        if breakdown { finalStateBreakdown(server) }
        return result
    }

    /// What the final state's bytes are made of, for `FIELDBENCH_BREAKDOWN=1`:
    /// per element kind, its bytes encoded alone and the text it carries.
    static func finalStateBreakdown(_ server: InMemorySyncServer) {
        var bytes: [String: Int] = [:], text: [String: Int] = [:], count: [String: Int] = [:]
        var contexts = 0, values = 0, concurrentText = 0
        for segment in server.allSegments {
            let state = segment.state
            var writer = BinaryWriter()
            writer.context(state.context)
            contexts += writer.bytes.count
            for element in state.elements {
                let kind: String
                var carried = 0
                switch element {
                case .creation: kind = "creation"
                case .field(_, let register):
                    kind = "field"; values += register.values.count
                    carried = register.values.reduce(0) { $0 + $1.value.utf8.count }
                    concurrentText += register.values.dropFirst().reduce(0) { $0 + $1.value.utf8.count }
                case .logEntry(_, let entry): kind = "log"; carried = entry.body.text.utf8.count
                case .item(_, let item):
                    kind = "item"; values += item.text.values.count
                    carried = item.text.values.reduce(0) { $0 + $1.value.utf8.count }
                    concurrentText += item.text.values.dropFirst().reduce(0) { $0 + $1.value.utf8.count }
                }
                bytes[kind, default: 0] += element.encodedRow(base: state.context.vector).count
                text[kind, default: 0] += carried
                count[kind, default: 0] += 1
            }
        }
        var line = "final state: contexts \(contexts) B, field values \(values), concurrent (non-winning) value text \(concurrentText) B"
        for kind in bytes.keys.sorted() {
            line += "; \(kind): \(count[kind]!) elements, \(bytes[kind]!) B, text \(text[kind]!) B"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// Bytes per message section (tag → total), for `FIELDBENCH_BREAKDOWN=1`.
    static func sectionSizes(_ bytes: [UInt8], into totals: inout [UInt8: Int]) {
        var offset = 2
        while offset < bytes.count {
            let tag = bytes[offset]
            offset += 1
            var length = 0
            var shift = 0
            while offset < bytes.count {
                let b = bytes[offset]
                offset += 1
                length |= Int(b & 0x7F) << shift
                shift += 7
                if b < 0x80 { break }
            }
            totals[tag, default: 0] += length
            offset += length
        }
    }

    static func compressedSize(_ bytes: [UInt8]) -> Int {
        bytes.count > Gzip.threshold ? Gzip.compress(bytes).count : bytes.count
    }
}

/// Wall-clock timing helpers.
enum Clock {
    static var now: Instant { Instant(nanoseconds: DispatchTime.now().uptimeNanoseconds) }

    struct Instant {
        var nanoseconds: UInt64
        var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - nanoseconds) / 1e9 }
        /// Seconds since this instant; restarts it.
        mutating func lap() -> Double {
            let current = DispatchTime.now().uptimeNanoseconds
            defer { nanoseconds = current }
            return Double(current - nanoseconds) / 1e9
        }
    }
}

func measure(_ body: () -> Void) -> Double {
    let start = Clock.now
    body()
    return start.elapsed
}

/// Peak resident set size of this process (VmHWM), in MB.
func peakResidentMegabytes() -> Double { statusMegabytes("VmHWM:") }

/// Resident MB per mapped file (anonymous memory as "[anon]"), largest first, for `FIELDBENCH_BREAKDOWN=1`.
func residentByMapping() -> String {
    // Read to the end: procfs reports a size of 0, so a sized read stops early.
    guard let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile() else { return "?" }
    let smaps = String(decoding: data, as: UTF8.self)
    var totals: [String: Double] = [:]
    var current = "[anon]"
    for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        if let first = fields.first, first.contains("-"), fields.count >= 5 {
            current = fields.count >= 6 ? String(fields[5].split(separator: "/").last ?? "") : "[anon]"
        } else if fields.first == "Rss:", fields.count >= 2, let kilobytes = Double(fields[1]) {
            totals[current, default: 0] += kilobytes / 1024
        }
    }
    return totals.sorted { $0.value > $1.value }.prefix(12).map { "\($0.key) \(($0.value * 10).rounded() / 10)" }.joined(separator: ", ")
}

/// Current resident set size (VmRSS), in MB.
func residentMegabytes() -> Double { statusMegabytes("VmRSS:") }

private func statusMegabytes(_ key: String) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(key) {
        let kilobytes = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return (kilobytes / 1024 * 10).rounded() / 10
    }
    return 0
}

/// CPU time (user + system) a process has used so far, in seconds, from
/// `/proc/PID/stat`: a sync's cost on a shared 2-core machine, which wall
/// time alone hides when the load generator competes for the cores.
func processCPUSeconds(_ pid: Int32 = getpid()) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = text.lastIndex(of: ")") else { return 0 }
    // Fields after the command name: state is field 3, utime 14 and stime 15.
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

import ArgumentParser
import Foundation
import SyncCore

struct SyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Push pending changes, pull what changed, purge what you may no longer hold.",
        discussion: """
            Exit code 3 when the server cannot be reached (pending changes stay on this device), 4 when the server \
            rejected changes or new conflicts arrived ('fieldcli rejected', 'fieldcli conflicts'; 'fieldcli status' \
            shows what is still open). Progress is shown on stderr when it is a terminal.
            """)

    func run() async throws {
        let context = CLIContext.current
        var workspace = try Workspace.open(context)
        var summary = try await SyncSession.run(&workspace, progress: context.output.stderrIsTerminal && !context.json)
        summary.passphraseRequired = workspace.replica.policy.requiresDevicePassphrase && !workspace.store.keyIsWrapped
        summary.clockAheadMinutes = StatusCommand.minutesAhead(workspace.replica)
        if summary.wiped {
            context.emit(summary) {
                "This device was revoked by an admin. Its local store has been wiped. Ask an admin for a new enrollment code."
            }
            var error = CLIError(.refused, "Device revoked; local data wiped.", code: "revoked")
            error.reported = context.json
            throw error
        }
        context.emit(summary) {
            var line = "Synced with \(summary.server): pushed \(summary.pushed) (accepted \(summary.accepted), rejected \(summary.rejected)), "
                + "pulled \(summary.pulled) changes (\(summary.snapshots) new segment\(summary.snapshots == 1 ? "" : "s")), purged \(summary.purged), new conflicts \(summary.newConflicts)."
            if summary.pendingLeft > 0 { line += " \(summary.pendingLeft) changes are still pending." }
            if let ahead = summary.clockAheadMinutes {
                line += "\nThis computer's clock is \(ahead) minutes ahead of the server's: set it right. Until then its changes are stamped "
                    + "in the future and shown as newer than colleagues' later ones."
            }
            if summary.restored {
                line += "\nThis device's store is older than what it had sent the server (restored from a backup?): it fetched the plans again whole. "
                    + "Its changes the server refused as reused IDs are listed by 'fieldcli rejected', with their text: write them again (new changes get new IDs now)."
            }
            if summary.rejected > 0 { line += "\nSome changes were rejected: see 'fieldcli rejected'." }
            if summary.newConflicts > 0 { line += "\nNew conflicts: see 'fieldcli conflicts'." }
            if summary.noAccess {
                line += "\nThe server gives your account no access now (it may have been disabled): this device holds no household. Ask an admin."
            }
            return line
        }
        if summary.passphraseRequired {
            // The policy changed in this sync: say so now, not at the next command.
            var error = CLIError(.refused, "The server's policy now requires a passphrase on this device's key. Run 'fieldcli passphrase set'; "
                                 + "nothing else runs until then.", code: "passphraseRequired")
            error.reported = context.json  // the summary says so
            throw error
        }
        if summary.rejected > 0 || summary.newConflicts > 0 {
            var error = CLIError(.attention, summary.rejected > 0 ? "\(summary.rejected) change(s) were rejected; run 'fieldcli rejected'."
                                                                 : "\(summary.newConflicts) new conflict(s); run 'fieldcli conflicts'.",
                                 code: "attention")
            error.reported = context.json
            throw error
        }
    }
}

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Pending changes, last sync, rejected changes, clock skew.")

    struct Status: Encodable {
        var user: String
        var role: String
        var device: String
        var replica: UInt32
        var server: String
        var households: Int
        var pending: Int
        var pendingByHousehold: [String: Int]
        var rejected: Int
        var rejectedAndPurged: Int
        var conflicts: Int
        var lastServerTime: String?
        var cursor: UInt64
        var clockSkew: Int
        /// Minutes this device's clock was ahead of the server's at the last sync (nil: within 5 minutes).
        var clockAheadMinutes: Int?
        var auditQueued: Int
        var passphraseProtected: Bool
    }

    /// Whole minutes the clock was ahead of the server's at the last sync (nil: within the drift allowed).
    static func minutesAhead(_ replica: ClientReplica) -> Int? {
        replica.clockAheadOfServer > 0 ? Int((replica.clockAheadOfServer + 30_000) / 60_000) : nil
    }

    func run() async throws {
        let workspace = try Workspace.open(.current)
        let replica = workspace.replica
        let status = Status(
            user: workspace.identity.user, role: workspace.identity.role, device: workspace.identity.name,
            replica: workspace.identity.replica, server: workspace.identity.server, households: replica.households.count,
            pending: replica.pending.count,
            pendingByHousehold: Dictionary(grouping: replica.pending, by: { $0.segment.household.description }).mapValues(\.count),
            rejected: replica.rejected.count, rejectedAndPurged: replica.purgedRejectedCount, conflicts: replica.conflicts().count,
            lastServerTime: replica.lastServerTime > 0 ? TimeText.iso(replica.lastServerTime) : nil, cursor: replica.cursor.seq,
            clockSkew: replica.clockSkewCount,
            clockAheadMinutes: Self.minutesAhead(replica),
            auditQueued: replica.auditQueue.count,
            passphraseProtected: workspace.store.keyIsWrapped)
        workspace.context.emit(status) {
            var lines = [
                "\(status.user) (\(status.role)) on device \(status.device), replica \(status.replica), server \(status.server)",
                "Households: \(status.households)   Pending changes: \(status.pending)   Rejected: \(status.rejected)   Conflicts: \(status.conflicts)",
                "Last sync: \(status.lastServerTime ?? "never")",
                "Device key: " + (status.passphraseProtected ? "protected by a passphrase" : "no passphrase ('fieldcli passphrase set' adds one)"),
            ]
            if status.rejectedAndPurged > 0 {
                lines.append("\(status.rejectedAndPurged) rejected change(s) were dropped with a purged segment; the server's quarantine keeps those it received.")
            }
            if let ahead = status.clockAheadMinutes {
                lines.append("Clock: \(ahead) minutes ahead of the server's at the last sync. Set this computer's clock right.")
            }
            lines.append(status.clockSkew > 0
                ? "Clock skew: \(status.clockSkew) time(s) a stamp arrived more than 5 minutes ahead of this device's clock: this clock is slow, "
                    + "or another device's is fast ('fieldcli status' there says so)."
                : "Clock skew: none seen")
            return lines.joined(separator: "\n")
        }
    }
}

struct ConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts",
        abstract: "List fields with concurrent values (every value with its ID) and items edited while removed.")

    @Argument(help: "Only this household.") var household: String?

    struct Entry: Encodable {
        var household: String
        var purpose: String
        var kind: String
        var name: String
        var item: String?
        var invariant: String?
        var values: [HouseholdView.ValueView]
    }

    func run() async throws {
        let workspace = try Workspace.open(.current)
        let id = try household.map { try workspace.household($0) }
        let entries = workspace.replica.conflicts(household: id).map { conflict in
            Entry(household: conflict.segment.household.description, purpose: conflict.segment.purpose.rawValue,
                  kind: conflict.kind.rawValue, name: conflict.name, item: conflict.item?.description, invariant: conflict.invariant,
                  values: conflict.values.map {
                      HouseholdView.ValueView(id: $0.id.description, value: $0.value, author: $0.author, at: TimeText.iso($0.stamp.milliseconds),
                                              winner: $0.winner)
                  })
        }
        workspace.context.emit(entries) {
            if entries.isEmpty { return "No conflicts on this device." }
            var lines: [String] = []
            for entry in entries {
                lines.append("\(entry.household.prefix(8)) \(entry.purpose) \(entry.name)\(entry.item.map { " item \($0)" } ?? ""): \(entry.kind)\(entry.invariant.map { " (\($0))" } ?? "")")
                for value in entry.values {
                    lines.append("   \(value.winner ? "*" : " ") \(value.id)  \(value.value)  (\(value.author), \(value.at))")
                }
            }
            if entries.contains(where: { $0.kind != ConflictInfo.Kind.editedWhileRemoved.rawValue }) {
                lines.append("Resolve a field with: fieldcli resolve H FIELD --pick VALUE_ID   (* marks the value shown now)")
            }
            if entries.contains(where: { $0.kind == ConflictInfo.Kind.editedWhileRemoved.rawValue }) {
                lines.append("Settle a goal edited while removed: fieldcli goal keep H ITEM keeps it, fieldcli goal remove H ITEM removes it")
            }
            return lines.joined(separator: "\n")
        }
    }
}

struct ResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve",
        abstract: "Resolve a conflicting field by picking a value (or writing a new one).",
        discussion: "A resolve is an ordinary write that supersedes the values you see; it syncs and is audited like any other.")

    @Argument(help: "Household ID (or a unique prefix).") var household: String
    @Argument(help: "The field in conflict.") var field: String
    @Option(help: "The value ID to keep (from 'fieldcli conflicts').") var pick: String?
    @Option(help: "A new value instead.") var value: String?

    func validate() throws {
        guard (pick == nil) != (value == nil) else { throw ValidationError("Give exactly one of --pick VALUE_ID or --value V.") }
        if let pick, Dot(pick) == nil { throw ValidationError("--pick takes a value ID like 12.3.") }
    }

    func run() async throws {
        var workspace = try Workspace.open(.current)
        let id = try workspace.household(household)
        let picked: Dot? = pick.flatMap { Dot($0) }
        let wall = workspace.now
        let op: SyncOperation
        do {
            op = try workspace.replica.resolve(household: id, field: field, pick: picked, value: value, wall: wall)
        } catch {
            throw refusalToCLI(error)
        }
        try workspace.save()
        var superseded: [String] = []
        if case .set(_, _, let resolves) = op.payload { superseded = resolves.map(\.description) }
        struct Resolved: Encodable {
            var household: String
            var field: String
            var valueID: String
            var superseded: [String]
        }
        workspace.context.emit(Resolved(household: id.description, field: field, valueID: op.dot.description, superseded: superseded)) {
            "Resolved \(field): value \(op.dot) supersedes \(superseded.joined(separator: ", ")). It reaches others at the next sync."
        }
    }
}

struct RejectedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejected",
        abstract: "Changes the server rejected, with the reason and what they wrote; --discard ID once you have dealt with one.",
        discussion: "This list is the only copy of a rejected change's text: copy what you need before you discard it. Showing it is audited like 'show'.")

    @Option(help: "Drop a rejected change from this list.") var discard: String?
    @Option(help: "With --discard: the household of the change (IDs repeat across households).") var household: String?
    @Option(help: "With --discard: the purpose of the change.") var purpose: String?

    struct Entry: Encodable {
        var id: String
        var household: String
        var purpose: String
        var kind: String
        var name: String?
        var reason: String
        var advice: String
        var at: String
        /// What the change wrote (a value, an entry's text, a goal), so that it can be written again.
        var text: String?
    }

    func run() async throws {
        var workspace = try Workspace.open(.current)
        if let discard {
            guard let dot = Dot(discard) else { throw CLIError.usage("--discard takes an ID like 12.3 from 'fieldcli rejected'.") }
            let household = try self.household.map { try workspace.household($0) }
            let purpose = try self.purpose.map { try workspace.purpose($0) }
            switch workspace.replica.discardRejected(dot, household: household, purpose: purpose) {
            case 0: throw CLIError(.usage, "No rejected change \(discard) on this device. 'fieldcli rejected' lists them.", code: "notFound")
            case 1: break
            default: throw CLIError.usage("Several rejected changes have ID \(discard); add --household H (and --purpose P).")
            }
            try workspace.save()
            workspace.context.emit(["discarded": discard]) { "Discarded rejected change \(discard)." }
            return
        }
        let entries = workspace.replica.rejected.map {
            Entry(id: $0.op.dot.description, household: $0.op.segment.household.description, purpose: $0.op.segment.purpose.rawValue,
                  kind: $0.op.payload.kindName, name: $0.op.payload.targetName, reason: $0.reason.rawValue, advice: $0.reason.advice,
                  at: TimeText.iso($0.at), text: $0.op.payload.writtenText)
        }
        // Their text is household data on screen: audited like any other read, per household and purpose.
        var shown: [SegmentKey: Int] = [:]
        for record in workspace.replica.rejected where record.op.payload.writtenText != nil { shown[record.op.segment, default: 0] += 1 }
        for (segment, count) in shown.sorted(by: { ($0.key.household.description, $0.key.purpose.rawValue) < ($1.key.household.description, $1.key.purpose.rawValue) }) {
            workspace.replica.recordRead(household: segment.household, purpose: segment.purpose, action: "rejectedList", count: count, wall: workspace.now)
        }
        if !shown.isEmpty { try workspace.save() }
        workspace.context.emit(entries) {
            var text = entries.isEmpty ? "No rejected changes." : Table.render(["ID", "HOUSEHOLD", "PURPOSE", "CHANGE", "REASON"], entries.map {
                [$0.id, String($0.household.prefix(8)), $0.purpose, $0.kind + ($0.name.map { " " + $0 } ?? ""), $0.reason]
            })
            // What to do about each reason, once per reason (the table has no room for it).
            var explained = Set<String>()
            for entry in entries where explained.insert(entry.reason).inserted {
                text += "\n\(entry.reason): \(entry.advice)"
            }
            let written = entries.filter { $0.text != nil }
            if !written.isEmpty {
                text += "\nWhat each change wrote (this is the only copy; write it again where it belongs before you discard it):"
                for entry in written { text += "\n  \(entry.id): \(entry.text ?? "")" }
            }
            if !entries.isEmpty { text += "\nOnce dealt with, drop one with 'fieldcli rejected --discard ID'." }
            if workspace.replica.purgedRejectedCount > 0 {
                text += "\n\(workspace.replica.purgedRejectedCount) more were dropped with purged segments; an admin can see those the server received ('fieldcli admin rejects')."
            }
            return text
        }
    }
}

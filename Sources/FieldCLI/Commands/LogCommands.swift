import ArgumentParser
import Foundation
import SyncCore

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Contact logs: append-only, one entry per purpose.",
        subcommands: [Add.self, List.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
        commandName: "add",
            abstract: "Add a contact-log entry (a home visit, a call, a meeting, a signal). Works offline.",
            discussion: "A contact that touches two purposes is written as one entry per purpose. Entries are immutable; correct one with --corrects ID.")

        @Argument(help: "Household ID (or a unique prefix).") var household: String
        @Option(help: "The purpose the entry belongs to, e.g. WMO or WGS.") var purpose: String
        @Option(help: "huisbezoek, telefoon, overleg or signaal (the schema lists more).") var kind: String
        @Option(help: "When the contact happened, e.g. 2026-03-01T14:30 (this computer's time zone) or 2026-03-01T14:30+01:00 (default: now).") var at: String?
        @Option(help: "The ID of an entry this one corrects.") var corrects: String?
        @Argument(help: "The text of the entry.") var text: String

        func validate() throws {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("The entry text is empty.") }
            if let at { _ = try parseTime(at, option: "--at") }
            if let corrects, Dot(corrects) == nil { throw ValidationError("--corrects takes an entry ID like 12.3 (see 'fieldcli log list').") }
        }

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let id = try workspace.household(household)
            let purposeCode = try workspace.purpose(purpose)
            guard let log = workspace.replica.schema.log("contactlog", purpose: purposeCode) else {
                throw CLIError.usage("Purpose \(purposeCode) has no contact log.")
            }
            guard log.kinds.contains(kind) else { throw CLIError.usage("--kind must be one of: \(log.kinds.joined(separator: ", ")).") }
            let occurredAt = try at.map { try parseTime($0, option: "--at") }
            let correction: Dot? = corrects.flatMap { Dot($0) }
            let wall = workspace.now
            // An entry records a contact that happened: a time days ahead is a typo (2062 for 2026).
            // A day of slack covers a device clock or time zone that is off.
            if let occurredAt, occurredAt > wall + 86_400_000 {
                throw CLIError.usage("--at \(at!) is more than a day after this device's clock (\(TimeText.iso(wall))). "
                                     + "A contact-log entry records a contact that happened; check the date.")
            }
            let op: SyncOperation
            do {
                op = try workspace.replica.appendLog(household: id, purpose: purposeCode, kind: kind, occurredAt: occurredAt, text: text,
                                                     correctionOf: correction, wall: wall)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["household": id.description, "purpose": purposeCode.rawValue, "entryID": op.dot.description, "status": "pending"]) {
                "Logged \(kind) for \(purposeCode) on \(id.description.prefix(8)) as entry \(op.dot); it syncs at the next 'fieldcli sync'."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the contact-log entries this device holds. Reads are audited.")

        @Argument(help: "Household ID (or a unique prefix).") var household: String
        @Option(help: "Only this purpose.") var purpose: String?

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let id = try workspace.household(household)
            let purposeFilter = try purpose.map { try workspace.purpose($0) }
            let view = HouseholdView.make(workspace, household: id, purpose: purposeFilter)
            let entries = view.segments.flatMap { segment in segment.logs.map { (segment.purpose, $0) } }
                .sorted { $0.1.occurredAt < $1.1.occurredAt }
            workspace.replica.recordRead(household: id, purpose: purposeFilter, action: "logList", count: entries.count, wall: workspace.now)
            try workspace.save()
            struct Row: Encodable {
                var purpose: String
                var entry: HouseholdView.EntryView
            }
            workspace.context.emit(entries.map { Row(purpose: $0.0, entry: $0.1) }) {
                if entries.isEmpty { return "No contact-log entries on this device for \(id.description.prefix(8))." }
                return Table.render(["ID", "PURPOSE", "WHEN", "KIND", "BY", "TEXT"], entries.map {
                    [$0.1.id, $0.0, $0.1.occurredAt, $0.1.kind, $0.1.author, $0.1.text]
                })
            }
        }
    }
}

struct GoalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "goal",
        abstract: "Goals (doelen) of a household plan, per purpose.",
        subcommands: [Add.self, List.self, Done.self, Keep.self, Remove.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a goal. Works offline.")
        @Argument(help: "Household ID (or a unique prefix).") var household: String
        @Option(help: "The purpose of the goal, e.g. REGIE or WMO.") var purpose: String
        @Option(help: "Insert at this position (0 = first; default last).") var index: Int?
        @Argument(help: "The goal, in the household's words.") var text: String

        func validate() throws {
            if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { throw ValidationError("The goal text is empty.") }
            if let index, index < 0 { throw ValidationError("--index must be 0 or more.") }
        }

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let id = try workspace.household(household)
            let purposeCode = try workspace.purpose(purpose)
            guard workspace.replica.schema.collection("doelen", purpose: purposeCode) != nil else {
                throw CLIError.usage("Purpose \(purposeCode) has no goals.")
            }
            let op: SyncOperation
            do {
                op = try workspace.replica.insertItem(household: id, purpose: purposeCode, at: index, text: text, wall: workspace.now)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["household": id.description, "purpose": purposeCode.rawValue, "goalID": op.dot.description]) {
                "Added goal \(op.dot) (\(purposeCode)) to \(id.description.prefix(8))."
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the goals this device holds.")
        @Argument(help: "Household ID (or a unique prefix).") var household: String
        @Option(help: "Only this purpose.") var purpose: String?

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let id = try workspace.household(household)
            let purposeFilter = try purpose.map { try workspace.purpose($0) }
            let view = HouseholdView.make(workspace, household: id, purpose: purposeFilter)
            struct Row: Encodable {
                var purpose: String
                var goal: HouseholdView.ItemView
            }
            let rows = view.segments.flatMap { segment in segment.items.filter { $0.collection == "doelen" }.map { Row(purpose: segment.purpose, goal: $0) } }
            workspace.replica.recordRead(household: id, purpose: purposeFilter, action: "goalList", count: rows.count, wall: workspace.now)
            try workspace.save()
            workspace.context.emit(rows) {
                if rows.isEmpty { return "No goals on this device for \(id.description.prefix(8))." }
                return Table.render(["ID", "PURPOSE", "STATUS", "GOAL"], rows.map {
                    [$0.goal.id, $0.purpose, $0.goal.status + ($0.goal.flagged ? " ⚠" : ""), $0.goal.text]
                })
            }
        }
    }

    /// The household, goal ID and optional purpose that `done`, `keep` and `remove` take.
    struct GoalArguments: ParsableArguments {
        @Argument(help: "Household ID (or a unique prefix).") var household: String
        @Argument(help: "Goal ID, from 'fieldcli goal list'.") var id: String
        @Option(help: "The goal's purpose, when the ID exists under more than one.") var purpose: String?

        func locate(in workspace: Workspace) throws -> (HouseholdID, Purpose, Dot) {
            let household = try workspace.household(self.household)
            let (purpose, dot) = try GoalCommand.locate(workspace, household: household, id: id,
                                                        purpose: try self.purpose.map { try workspace.purpose($0) })
            return (household, purpose, dot)
        }
    }

    /// Finds which purpose's goals hold an item.
    static func locate(_ workspace: Workspace, household: HouseholdID, id text: String, purpose: Purpose? = nil) throws -> (Purpose, Dot) {
        guard let dot = Dot(text) else { throw CLIError.usage("\(text) is not a goal ID; 'fieldcli goal list H' shows them (like 12.3).") }
        let purposes = workspace.replica.segments(of: household).filter { key in
            (workspace.replica.view(key)?.collections["doelen"]?[dot]?.isLive ?? false) && (purpose == nil || key.purpose == purpose)
        }.map(\.purpose)
        guard let found = purposes.first else {
            throw CLIError(.usage, "Goal \(text) is not on this device for \(household.description.prefix(8)). 'fieldcli goal list' shows the goal IDs.",
                           code: "notFound")
        }
        guard purposes.count == 1 else {
            throw CLIError.usage("Goal ID \(text) exists under \(purposes.map(\.rawValue).joined(separator: " and ")); add --purpose P.")
        }
        return (found, dot)
    }

    struct Done: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "done", abstract: "Mark a goal done.")
        @OptionGroup var goal: GoalArguments

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let (household, purpose, dot) = try goal.locate(in: workspace)
            do {
                try workspace.replica.editItem(household: household, purpose: purpose, item: dot, field: .status, value: "done", wall: workspace.now)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["goalID": dot.description, "status": "done"]) { "Goal \(dot) is marked done." }
        }
    }

    struct Keep: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "keep",
            abstract: "Keep a goal that was edited while another worker removed it (clears the ⚠).",
            discussion: "Writes the goal's current status again, so the removal it had not seen no longer counts. 'goal remove' settles it the other way.")
        @OptionGroup var goal: GoalArguments

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let (household, purpose, dot) = try goal.locate(in: workspace)
            let item = workspace.replica.view(SegmentKey(household: household, purpose: purpose))?.collections["doelen"]?[dot]
            guard let item, item.isFlagged else {
                throw CLIError(.usage, "Goal \(dot) is not flagged as edited while removed; there is nothing to keep.", code: "notFlagged")
            }
            let status = item.status.winner?.value ?? "open"
            do {
                try workspace.replica.editItem(household: household, purpose: purpose, item: dot, field: .status, value: status, wall: workspace.now)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["goalID": dot.description, "status": status]) { "Goal \(dot) is kept (\(status))." }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
        commandName: "remove",
            abstract: "Remove a goal.",
            discussion: "If another worker edits the goal at the same time, it stays, flagged, so nothing is silently lost.")
        @OptionGroup var goal: GoalArguments

        func run() async throws {
            var workspace = try Workspace.open(.current)
            let (household, purpose, dot) = try goal.locate(in: workspace)
            do {
                try workspace.replica.removeItem(household: household, purpose: purpose, item: dot, wall: workspace.now)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["goalID": dot.description, "status": "removed"]) { "Goal \(dot) is removed." }
        }
    }
}

import ArgumentParser
import Foundation
import SyncCore

struct HouseholdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "household",
        abstract: "Create a household on this device.",
        subcommands: [New.self])

    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
        commandName: "new",
            abstract: "Create a new household; prints its ID. Works offline.",
            discussion: "The household is created on this device and sent to the server at the next sync; you are assigned to it.")

        @Option(help: "A label for lists (a REGIE field; no BSN, keep it short).")
        var label: String?

        func run() async throws {
            var workspace = try Workspace.open(.current)
            var generator = SystemRandomNumberGenerator()
            let id = HouseholdID.random(using: &generator)
            do {
                _ = try workspace.replica.createHousehold(id: id, label: label, wall: workspace.now)
            } catch {
                throw refusalToCLI(error)
            }
            try workspace.save()
            workspace.context.emit(["household": id.description]) { id.description }
        }
    }
}

struct HouseholdsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "households", abstract: "List the households this device holds.")

    struct Entry: Encodable {
        var id: String
        var label: String?
        var purposes: [String]
        var pending: Int
        var conflicts: Int
        var createdHere: Bool
    }

    func run() async throws {
        let workspace = try Workspace.open(.current)
        let replica = workspace.replica
        let entries = replica.households.map { household in
            Entry(id: household.description, label: workspace.label(of: household),
                  purposes: replica.segments(of: household).map(\.purpose.rawValue),
                  pending: replica.pending.filter { $0.segment.household == household }.count,
                  conflicts: replica.conflicts(household: household).count,
                  createdHere: replica.locallyCreated.contains(household))
        }
        workspace.context.emit(entries) {
            if entries.isEmpty { return "This device holds no households yet. Run 'fieldcli sync', or create one with 'fieldcli household new'." }
            return Table.render(["HOUSEHOLD", "LABEL", "PURPOSES", "PENDING", "CONFLICTS"], entries.map {
                [$0.id, $0.label ?? "-", $0.purposes.joined(separator: ","), String($0.pending), String($0.conflicts)]
            })
        }
    }
}

struct SetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Write a field of a household plan. The field's purpose comes from the schema.",
        discussion: "Refused with exit code 2, before anything is queued, when your role or grants do not allow the field's purpose.")

    @Argument(help: "Household ID (or a unique prefix).") var household: String
    @Argument(help: "Field name, e.g. next_evaluation_date or wmo_request.") var field: String
    @Argument(help: "The value; \"\" clears the field (not a worker reference such as regisseur).") var value: String

    func run() async throws {
        var workspace = try Workspace.open(.current)
        let id = try workspace.household(household)
        let op: SyncOperation
        do {
            op = try workspace.replica.set(household: id, field: field, value: value, wall: workspace.now)
        } catch {
            throw refusalToCLI(error)
        }
        try workspace.save()
        workspace.context.emit(["household": id.description, "field": field, "purpose": op.segment.purpose.rawValue,
                                "valueID": op.dot.description, "status": "pending"]) {
            "Set \(field) (\(op.segment.purpose)) on \(id.description.prefix(8)); value \(op.dot) is pending until the next sync."
        }
    }
}

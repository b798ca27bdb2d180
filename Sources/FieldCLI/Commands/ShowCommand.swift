import ArgumentParser
import Foundation
import SyncCore

/// What `show` and `export` print about a household.
struct HouseholdView: Encodable {
    struct FieldView: Encodable {
        var name: String
        var value: String?
        var conflict: Bool
        var values: [ValueView]
    }

    struct ValueView: Encodable {
        var id: String
        var value: String
        var author: String
        var at: String
        var winner: Bool
    }

    struct EntryView: Encodable {
        var id: String
        var log: String
        var kind: String
        var occurredAt: String
        var author: String
        var text: String
        var correctionOf: String?
    }

    struct ItemView: Encodable {
        var id: String
        var collection: String
        var text: String
        var status: String
        var flagged: Bool
        var author: String?
    }

    struct SegmentView: Encodable {
        var purpose: String
        var epoch: UInt32
        var pending: Int
        var fields: [FieldView]
        var logs: [EntryView]
        var items: [ItemView]
    }

    struct InvolvedView: Encodable {
        var user: String
        var role: String
        var purposes: [String]
        var contact: String
    }

    var household: String
    var label: String?
    var segments: [SegmentView]
    var involved: [InvolvedView]
    /// Purposes of this household the device does not hold (not granted, or nothing there).
    var notShown: [String]

    static func make(_ workspace: Workspace, household: HouseholdID, purpose: Purpose?) -> HouseholdView {
        let replica = workspace.replica
        var segments: [SegmentView] = []
        for key in replica.segments(of: household) where purpose == nil || key.purpose == purpose {
            guard let state = replica.view(key) else { continue }
            // Sorted maps iterate in name order.
            let fields = state.fields.map { name, register -> FieldView in
                FieldView(name: name, value: register.winner?.value, conflict: register.isConflict,
                                 values: register.values.enumerated().map { index, value in
                                     ValueView(id: value.dot.description, value: value.value, author: value.author,
                                               at: TimeText.iso(value.stamp.milliseconds), winner: index == 0)
                                 })
            }
            var logs: [EntryView] = []
            for (name, log) in state.logs {
                logs += log.ordered.map {
                    EntryView(id: $0.dot.description, log: name, kind: $0.body.kind, occurredAt: TimeText.iso($0.body.occurredAt),
                              author: $0.author, text: $0.body.text, correctionOf: $0.body.correctionOf?.description)
                }
            }
            var items: [ItemView] = []
            for (name, collection) in state.collections {
                items += collection.liveItems.map {
                    ItemView(id: $0.id.description, collection: name, text: $0.text.winner?.value ?? "",
                             status: $0.status.winner?.value ?? "open", flagged: $0.isFlagged, author: $0.text.winner?.author)
                }
            }
            segments.append(SegmentView(purpose: key.purpose.rawValue, epoch: state.epoch,
                                        pending: replica.pending.filter { $0.segment == key }.count,
                                        fields: fields, logs: logs, items: items))
        }
        let involved = (replica.policy.involvement[household] ?? []).map {
            InvolvedView(user: $0.user, role: $0.restricted ? "a professional is involved" : $0.role,
                         purposes: $0.purposes.map(\.rawValue), contact: $0.contact)
        }
        let held = Set(segments.map(\.purpose))
        let notShown = purpose.map { held.contains($0.rawValue) ? [] : [$0.rawValue] }
            ?? replica.schema.devicePurposes.map(\.rawValue).filter { !held.contains($0) }
        return HouseholdView(household: household.description, label: workspace.label(of: household), segments: segments,
                             involved: involved, notShown: notShown)
    }

    var elementCount: Int { segments.reduce(0) { $0 + $1.fields.count + $1.logs.count + $1.items.count } }

    func render() -> String {
        var lines = ["Household \(household)\(label.flatMap { $0.isEmpty ? nil : " — \($0)" } ?? "")"]
        for segment in segments {
            lines.append("")
            lines.append("[\(segment.purpose)]\(segment.pending > 0 ? " (\(segment.pending) pending)" : "")")
            for field in segment.fields {
                if field.conflict {
                    lines.append("  \(field.name): \(field.value ?? "") ⚠ CONFLICT — \(field.values.count) values:")
                    for value in field.values {
                        lines.append("      \(value.winner ? "*" : " ") \(value.id)  \(value.value)  (\(value.author), \(value.at))")
                    }
                    lines.append("      resolve with: fieldcli resolve \(household.prefix(8)) \(field.name) --pick VALUE_ID")
                } else {
                    lines.append("  \(field.name): \(field.value ?? "")")
                }
            }
            for item in segment.items {
                lines.append("  goal \(item.id) [\(item.status)] \(item.text)\(item.flagged ? "  ⚠ edited while removed (goal keep or goal remove settles it)" : "")")
            }
            for entry in segment.logs {
                lines.append("  \(entry.occurredAt) \(entry.kind) by \(entry.author): \(entry.text)")
            }
        }
        if segments.isEmpty, !notShown.isEmpty {
            // Asked for one purpose the device does not hold: say so rather than print a bare header.
            lines.append("")
            lines.append("Nothing of \(notShown.joined(separator: ", ")) is on this device: you are not granted it here, nothing was written to it yet, or it was erased.")
        }
        lines.append("")
        if involved.isEmpty {
            lines.append("Also involved: nobody else.")
        } else {
            lines.append("Also involved:")
            for person in involved {
                let purposes = person.purposes.isEmpty ? "" : " (\(person.purposes.joined(separator: ", ")))"
                lines.append("  \(person.user) — \(person.role)\(purposes)\(person.contact.isEmpty ? "" : ", contact: \(person.contact)")")
            }
        }
        return lines.joined(separator: "\n")
    }
}

struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a household: values, conflicts (every value with its ID), goals, logs, and who else is involved.",
        discussion: "Only what this device holds is shown: purposes you are not granted never reach this device. Reads are audited.")

    @Argument(help: "Household ID (or a unique prefix).") var household: String
    @Option(help: "Only this purpose, e.g. WMO.") var purpose: String?

    func run() async throws {
        var workspace = try Workspace.open(.current)
        let id = try workspace.household(household)
        let purposeFilter = try purpose.map { try workspace.purpose($0) }
        let view = HouseholdView.make(workspace, household: id, purpose: purposeFilter)
        workspace.replica.recordRead(household: id, purpose: purposeFilter, action: "show", count: view.elementCount, wall: workspace.now)
        try workspace.save()
        workspace.context.emit(view) { view.render() }
    }
}

struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Print everything this device holds about a household (for a resident's inzage request).",
        discussion: "Includes every value, entry and item held, pending and rejected changes. Use --json for a file. The export is audited.")

    @Argument(help: "Household ID (or a unique prefix).") var household: String

    struct Export: Encodable {
        var exportedAt: String
        var device: String
        var user: String
        var view: HouseholdView
        var pending: [PendingView]
        var rejected: [PendingView]
    }

    struct PendingView: Encodable {
        var id: String
        var purpose: String
        var kind: String
        var name: String?
        var reason: String?
    }

    func run() async throws {
        var workspace = try Workspace.open(.current)
        let id = try workspace.household(household)
        let view = HouseholdView.make(workspace, household: id, purpose: nil)
        let pending = workspace.replica.pending.filter { $0.segment.household == id }.map {
            PendingView(id: $0.dot.description, purpose: $0.segment.purpose.rawValue, kind: $0.payload.kindName, name: $0.payload.targetName, reason: nil)
        }
        let rejected = workspace.replica.rejected.filter { $0.op.segment.household == id }.map {
            PendingView(id: $0.op.dot.description, purpose: $0.op.segment.purpose.rawValue, kind: $0.op.payload.kindName,
                        name: $0.op.payload.targetName, reason: $0.reason.rawValue)
        }
        let export = Export(exportedAt: TimeText.iso(workspace.now), device: workspace.identity.name, user: workspace.identity.user,
                            view: view, pending: pending, rejected: rejected)
        workspace.replica.recordRead(household: id, purpose: nil, action: "export", count: view.elementCount, wall: workspace.now)
        try workspace.save()
        workspace.context.emit(export) {
            var text = "Export of household \(id) from device \(export.device) (\(export.user)) at \(export.exportedAt)\n\n" + view.render()
            if !pending.isEmpty { text += "\n\nPending (not yet synced): " + pending.map { "\($0.id) \($0.purpose) \($0.kind)" }.joined(separator: "; ") }
            if !rejected.isEmpty { text += "\nRejected by the server: " + rejected.map { "\($0.id) \($0.purpose) \($0.reason ?? "")" }.joined(separator: "; ") }
            return text
        }
    }
}

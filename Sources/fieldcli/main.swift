import FieldCLI
import Foundation

exit(await FieldCLIEntry.run(Array(CommandLine.arguments.dropFirst())))

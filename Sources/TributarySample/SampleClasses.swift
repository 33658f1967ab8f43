import Tributary

/// The four classes the DeepStream sample counts, and how COCO's 80 map onto them. The one
/// place this mapping lives; the README documents it.
public enum SampleClass: String, Sendable, CaseIterable {
    case vehicle = "Vehicle"
    case twoWheeler = "TwoWheeler"
    case person = "Person"
    case roadSign = "RoadSign"

    /// Vehicle = car, bus, truck; TwoWheeler = bicycle, motorcycle; Person = person;
    /// RoadSign = stop sign, traffic light. Other COCO classes count as objects but in no class.
    public init?(cocoLabel: String) {
        switch cocoLabel.lowercased() {
        case "car", "bus", "truck": self = .vehicle
        case "bicycle", "motorcycle", "motorbike": self = .twoWheeler
        case "person": self = .person
        case "stop sign", "traffic light": self = .roadSign
        default: return nil
        }
    }

    /// Objects of each class in a frame.
    public static func counts(_ objects: [ObjectMeta]) -> [SampleClass: Int] {
        var counts: [SampleClass: Int] = [:]
        for object in objects { if let c = SampleClass(cocoLabel: object.label) { counts[c, default: 0] += 1 } }
        return counts
    }
}

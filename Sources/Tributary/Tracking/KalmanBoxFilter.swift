/// SORT's constant-velocity Kalman filter of one box: state (cx, cy, area, aspect, vx, vy, varea),
/// measurement (cx, cy, area, aspect); the aspect ratio is taken as constant. Matrices are fixed
/// 7 × 7 and 4 × 4 in flat arrays, updated in place.
struct KalmanBoxFilter: Sendable {
    private static let n = 7, m = 4
    /// The state.
    private var x: [Double]
    /// The state's covariance, row-major.
    private var p: [Double]

    init(_ box: Rect) {
        x = Self.measurement(box) + [0, 0, 0]
        // Position known to the measurement's noise, velocities unknown.
        p = Self.diagonal([10, 10, 10, 10, 10_000, 10_000, 10_000])
    }

    /// The box the state describes.
    var box: Rect {
        let area = max(x[2], 0), aspect = max(x[3], 1e-6)
        let width = (area * aspect).squareRoot(), height = width > 0 ? area / width : 0
        return Rect(left: Float(x[0] - width / 2), top: Float(x[1] - height / 2), width: Float(width), height: Float(height))
    }

    /// One frame on: x = F x, P = F P Fᵀ + Q.
    mutating func predict() {
        if x[2] + x[6] <= 0 { x[6] = 0 }  // the area must not go negative
        x[0] += x[4]; x[1] += x[5]; x[2] += x[6]
        // F P Fᵀ with F = I + (rows 0,1,2 get rows 4,5,6): first rows, then columns.
        let n = Self.n
        for (i, k) in [(0, 4), (1, 5), (2, 6)] { for j in 0..<n { p[i * n + j] += p[k * n + j] } }
        for (j, k) in [(0, 4), (1, 5), (2, 6)] { for i in 0..<n { p[i * n + j] += p[i * n + k] } }
        for (i, q) in [1, 1, 1, 1, 0.01, 0.01, 0.0001].enumerated() { p[i * n + i] += q }
    }

    /// Corrects the state with a measured box (H = [I₄ 0], R = diag(1, 1, 10, 10)).
    mutating func update(_ box: Rect) {
        let n = Self.n, m = Self.m
        let z = Self.measurement(box)
        // S = H P Hᵀ + R: P's top-left 4 × 4.
        var s = [Double](repeating: 0, count: m * m)
        for i in 0..<m { for j in 0..<m { s[i * m + j] = p[i * n + j] } }
        for (i, r) in [1.0, 1, 10, 10].enumerated() { s[i * m + i] += r }
        guard let sInverse = Self.inverse4(s) else { return }
        // K = P Hᵀ S⁻¹: P's first four columns times S⁻¹ (7 × 4).
        var k = [Double](repeating: 0, count: n * m)
        for i in 0..<n { for j in 0..<m {
            var sum = 0.0
            for l in 0..<m { sum += p[i * n + l] * sInverse[l * m + j] }
            k[i * m + j] = sum
        } }
        let y = (0..<m).map { z[$0] - x[$0] }
        for i in 0..<n { for j in 0..<m { x[i] += k[i * m + j] * y[j] } }
        // P = (I − K H) P: row i loses Σ_l K[i][l] · P[l][·] over the four measured rows.
        let previous = p
        for i in 0..<n { for j in 0..<n {
            var sum = 0.0
            for l in 0..<m { sum += k[i * m + l] * previous[l * n + j] }
            p[i * n + j] = previous[i * n + j] - sum
        } }
    }

    private static func measurement(_ box: Rect) -> [Double] {
        let width = Double(box.width), height = Double(box.height)
        return [Double(box.left) + width / 2, Double(box.top) + height / 2, width * height, height > 0 ? width / height : 0]
    }

    private static func diagonal(_ values: [Double]) -> [Double] {
        var matrix = [Double](repeating: 0, count: values.count * values.count)
        for (i, value) in values.enumerated() { matrix[i * values.count + i] = value }
        return matrix
    }

    /// The inverse of a 4 × 4 matrix by Gauss–Jordan with partial pivoting; nil when singular.
    private static func inverse4(_ matrix: [Double]) -> [Double]? {
        let m = 4
        var a = matrix, inverse = diagonal([1, 1, 1, 1])
        for column in 0..<m {
            guard let pivot = (column..<m).max(by: { abs(a[$0 * m + column]) < abs(a[$1 * m + column]) }),
                  abs(a[pivot * m + column]) > 1e-12 else { return nil }
            if pivot != column {
                for j in 0..<m { a.swapAt(pivot * m + j, column * m + j); inverse.swapAt(pivot * m + j, column * m + j) }
            }
            let scale = a[column * m + column]
            for j in 0..<m { a[column * m + j] /= scale; inverse[column * m + j] /= scale }
            for row in 0..<m where row != column {
                let factor = a[row * m + column]
                guard factor != 0 else { continue }
                for j in 0..<m { a[row * m + j] -= factor * a[column * m + j]; inverse[row * m + j] -= factor * inverse[column * m + j] }
            }
        }
        return inverse
    }
}

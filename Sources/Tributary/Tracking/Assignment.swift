/// Minimum-cost assignment of rows to columns (the Hungarian algorithm with potentials, O(n²·m)
/// for n ≤ m; a wider matrix is solved transposed). Pure and deterministic: the same costs give
/// the same assignment.
public enum Assignment {
    /// For a `rows` × `columns` cost matrix in row-major order, each row's column, or nil for the
    /// rows left without one (when there are more rows than columns). Every column is used at
    /// most once; the total cost of the pairs is the least possible.
    public static func minimumCost(_ cost: [Double], rows: Int, columns: Int) -> [Int?] {
        precondition(cost.count == rows * columns, "cost matrix is not rows × columns")
        guard rows > 0, columns > 0 else { return Array(repeating: nil, count: rows) }
        if rows <= columns {
            return solve(rows: rows, columns: columns) { cost[$0 * columns + $1] }
        }
        // More rows than columns: assign the columns to rows, then invert.
        let columnToRow = solve(rows: columns, columns: rows) { cost[$1 * columns + $0] }
        var rowToColumn = [Int?](repeating: nil, count: rows)
        for (column, row) in columnToRow.enumerated() { if let row { rowToColumn[row] = column } }
        return rowToColumn
    }

    /// n ≤ m: every row gets a column. Indices are 1-based inside, 0 being the virtual column.
    private static func solve(rows n: Int, columns m: Int, cost: (Int, Int) -> Double) -> [Int?] {
        var u = [Double](repeating: 0, count: n + 1), v = [Double](repeating: 0, count: m + 1)
        var owner = [Int](repeating: 0, count: m + 1)  // owner[j]: the row holding column j (0: none)
        var way = [Int](repeating: 0, count: m + 1)
        var minimum = [Double](repeating: 0, count: m + 1)
        var used = [Bool](repeating: false, count: m + 1)
        for row in 1...n {
            owner[0] = row
            var j0 = 0
            for j in 0...m { minimum[j] = .infinity; used[j] = false }
            repeat {
                used[j0] = true
                let i0 = owner[j0]
                var delta = Double.infinity, j1 = 0
                for j in 1...m where !used[j] {
                    let reduced = cost(i0 - 1, j - 1) - u[i0] - v[j]
                    if reduced < minimum[j] { minimum[j] = reduced; way[j] = j0 }
                    if minimum[j] < delta { delta = minimum[j]; j1 = j }
                }
                for j in 0...m {
                    if used[j] { u[owner[j]] += delta; v[j] -= delta } else { minimum[j] -= delta }
                }
                j0 = j1
            } while owner[j0] != 0
            repeat {
                let j1 = way[j0]
                owner[j0] = owner[j1]
                j0 = j1
            } while j0 != 0
        }
        var result = [Int?](repeating: nil, count: n)
        for j in 1...m where owner[j] != 0 { result[owner[j] - 1] = j - 1 }
        return result
    }
}

import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'

import { describe, expect, it } from 'vitest'

import en from './en.json'
import ru from './ru.json'

function keys(node: unknown, prefix = ''): string[] {
  return Object.entries(node as Record<string, unknown>).flatMap(([k, v]) =>
    v && typeof v === 'object' ? keys(v, `${prefix}${k}.`) : [`${prefix}${k}`])
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return sources(path)
    return /\.(vue|ts)$/.test(name) && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') ? [path] : []
  })
}

describe('locale files', () => {
  it('have the same keys in Russian and English', () => {
    expect(keys(en).sort()).toEqual(keys(ru).sort())
  })

  it("have every key the code names literally (t('…'), te('…'), title: '…')", () => {
    const known = new Set(keys(ru))
    const used = new Set<string>()
    const literal = /\b(?:t|te|\$t)\(\s*'([a-zA-Z][\w]*(?:\.[\w]+)+)'|\btitle: '([a-zA-Z]\w*(?:\.\w+)+)'/g
    for (const file of sources(resolve(process.cwd(), 'src'))) {
      for (const match of readFileSync(file, 'utf8').matchAll(literal)) used.add((match[1] ?? match[2])!)
    }
    expect(used.size).toBeGreaterThan(100)
    expect([...used].filter((k) => !known.has(k))).toEqual([])
  })
})

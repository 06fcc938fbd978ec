import { describe, expect, it } from 'vitest'
import { createApp, defineComponent, h } from 'vue'
import { createI18n } from 'vue-i18n'

import en from './en.json'
import ru from './ru.json'
import { REGION_CODES, regionKey, useRegions } from './regions'

function regionsIn(locale: 'ru' | 'en') {
  const i18n = createI18n({ legacy: false, locale, fallbackLocale: 'ru', messages: { ru, en } })
  let api!: ReturnType<typeof useRegions>
  const probe = defineComponent({
    setup: () => {
      api = useRegions()
      return () => h('i')
    },
  })
  createApp(probe).use(i18n).mount(document.createElement('div'))
  return api
}

describe('region names for the API region codes', () => {
  it('names the federal subjects in Russian and English', () => {
    expect(regionsIn('ru').regionLabel('16')).toBe('Республика Татарстан')
    expect(regionsIn('en').regionLabel('16')).toBe('Republic of Tatarstan')
    expect(regionsIn('ru').regionLabel('77')).toBe('Москва')
    expect(regionsIn('en').regionLabel('78')).toBe('Saint Petersburg')
    expect(regionsIn('ru').regionLabel('7')).toBe('Кабардино-Балкарская Республика')
    expect(regionKey(' 02 ')).toBe('regions.02')
  })

  it('shows an unknown code as the code', () => {
    const ru_ = regionsIn('ru')
    expect(ru_.regionName('999')).toBeNull()
    expect(ru_.regionLabel('999')).toBe('Регион 999')
    expect(ru_.regionLabel('unknown')).toBe('Регион unknown')
    expect(regionsIn('en').regionLabel('x-1')).toBe('Region x-1')
    expect(ru_.regionName('')).toBeNull()
  })

  it('has the same 83 subjects in both languages', () => {
    const codes = (m: { regions: Record<string, string> }) => Object.keys(m.regions).filter((k) => k !== 'unknown')
    expect(codes(ru).sort()).toEqual(codes(en).sort())
    expect(codes(ru)).toHaveLength(83)
    expect(codes(ru).every((c) => /^\d\d$/.test(c))).toBe(true)
  })

  it('offers every subject to choose from, by its name in the language shown (SC-2)', () => {
    for (const locale of ['ru', 'en'] as const) {
      const choices = regionsIn(locale).regionChoices.value
      expect(choices.map((c) => c.code).sort()).toEqual([...REGION_CODES].sort())
      const names = choices.map((c) => c.name)
      expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b, locale)))
    }
    expect(regionsIn('en').regionChoices.value.find((c) => c.code === '16')?.name).toBe('Republic of Tatarstan')
    expect(REGION_CODES).toHaveLength(83)
  })
})

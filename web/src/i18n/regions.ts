/**
 * Region names. The API knows regions by code only: the codes of the Russian Federation's federal
 * subjects ("16", "77"), as the e-journal providers are registered. Their names, Russian and English,
 * are the locale files' `regions` table; a code not in it is shown as the code ("Регион 99").
 */
import { computed } from 'vue'
import { useI18n } from 'vue-i18n'

import ru from './ru.json'

/** The codes of the table (the server's shared/regions.py holds the same names; a test keeps them equal). */
export const REGION_CODES: readonly string[] = Object.keys(ru.regions).filter((code) => code !== 'unknown')

/** The table's key of a code: "7" and "07" are the same subject. */
export function regionKey(code: string): string {
  const c = code.trim()
  return `regions.${/^\d$/.test(c) ? `0${c}` : c}`
}

export function useRegions() {
  const { t, te, locale } = useI18n()
  /** The region's name, or null when the code is not a known subject's. */
  const regionName = (code: string): string | null => {
    const key = regionKey(code)
    return code.trim() && key !== 'regions.unknown' && te(key) ? t(key) : null
  }
  /** What to show for a code: its name, else the code itself. */
  const regionLabel = (code: string): string => regionName(code) ?? t('regions.unknown', { code })
  /** Every region as a choice, by its name in the language shown. */
  const regionChoices = computed(() => REGION_CODES.map((code) => ({ code, name: t(regionKey(code)) }))
    .sort((a, b) => a.name.localeCompare(b.name, locale.value)))
  return { regionName, regionLabel, regionChoices }
}

//! Plausible Chinese personal names for generated people.
//!
//! Surname shares are the national top-100 list from the 2020 census as
//! published in 《二〇二〇年全国姓名报告》 (公安部户政管理研究中心), with
//! surnames that are markedly more common in Shanxi (郭, 武, 贾, 闫, 梁, 段,
//! 乔, 霍, 牛, 温, 樊, 申) weighted up. Given-name characters and their
//! relative weights follow the most frequent characters in given names of
//! people born 1960–2000 in the same report's lists.

use rand::{distributions::WeightedIndex, prelude::Distribution, Rng};

/// (surname, share in 1/10000)
const SURNAMES: &[(&str, u32)] = &[
    ("王", 712),
    ("李", 700),
    ("张", 674),
    ("刘", 510),
    ("陈", 461),
    ("杨", 322),
    ("黄", 245),
    ("赵", 340),
    ("吴", 205),
    ("周", 189),
    ("徐", 145),
    ("孙", 138),
    ("马", 129),
    ("朱", 128),
    ("胡", 116),
    ("郭", 230),
    ("何", 106),
    ("林", 103),
    ("高", 100),
    ("罗", 95),
    ("郑", 81),
    ("梁", 160),
    ("谢", 76),
    ("宋", 74),
    ("唐", 73),
    ("许", 66),
    ("韩", 65),
    ("冯", 64),
    ("邓", 63),
    ("曹", 61),
    ("彭", 59),
    ("曾", 58),
    ("肖", 56),
    ("田", 80),
    ("董", 53),
    ("袁", 50),
    ("潘", 50),
    ("于", 49),
    ("蒋", 49),
    ("蔡", 48),
    ("余", 47),
    ("杜", 46),
    ("叶", 45),
    ("程", 44),
    ("苏", 42),
    ("魏", 42),
    ("吕", 41),
    ("丁", 40),
    ("任", 40),
    ("沈", 38),
    ("姚", 37),
    ("卢", 37),
    ("姜", 36),
    ("崔", 35),
    ("钟", 35),
    ("谭", 34),
    ("陆", 33),
    ("汪", 32),
    ("范", 32),
    ("金", 31),
    ("石", 31),
    ("廖", 30),
    ("贾", 90),
    ("夏", 29),
    ("韦", 20),
    ("付", 28),
    ("方", 27),
    ("白", 40),
    ("邹", 27),
    ("孟", 26),
    ("熊", 26),
    ("秦", 25),
    ("邱", 25),
    ("江", 25),
    ("尹", 24),
    ("薛", 30),
    ("闫", 70),
    ("段", 60),
    ("雷", 22),
    ("侯", 30),
    ("龙", 22),
    ("史", 25),
    ("陶", 20),
    ("黎", 15),
    ("贺", 22),
    ("顾", 19),
    ("毛", 19),
    ("郝", 35),
    ("龚", 18),
    ("邵", 18),
    ("万", 17),
    ("钱", 17),
    ("严", 16),
    ("武", 90),
    ("戴", 16),
    ("孔", 15),
    ("向", 10),
    ("汤", 15),
    ("乔", 40),
    ("霍", 30),
    ("牛", 30),
    ("温", 30),
    ("樊", 25),
    ("申", 25),
    ("常", 25),
    ("康", 20),
    ("杭", 3),
    ("焦", 18),
];

const MALE_CHARS: &[(&str, u32)] = &[
    ("伟", 60),
    ("强", 40),
    ("磊", 40),
    ("军", 45),
    ("勇", 35),
    ("杰", 40),
    ("涛", 30),
    ("斌", 30),
    ("超", 30),
    ("明", 35),
    ("刚", 28),
    ("平", 25),
    ("辉", 30),
    ("鹏", 28),
    ("华", 30),
    ("飞", 25),
    ("鑫", 22),
    ("波", 22),
    ("宇", 30),
    ("浩", 28),
    ("凯", 22),
    ("健", 22),
    ("俊", 22),
    ("帆", 12),
    ("旭", 18),
    ("宁", 15),
    ("龙", 20),
    ("林", 18),
    ("晨", 16),
    ("峰", 20),
    ("建", 30),
    ("志", 30),
    ("文", 28),
    ("海", 25),
    ("亮", 22),
    ("东", 25),
    ("晓", 20),
    ("国", 30),
    ("成", 20),
    ("春", 15),
    ("宏", 20),
    ("振", 15),
    ("永", 20),
    ("新", 18),
    ("鸿", 10),
    ("子", 20),
    ("博", 15),
    ("嘉", 10),
    ("瑞", 12),
    ("泽", 12),
    ("睿", 10),
    ("晋", 10),
    ("利", 12),
    ("庆", 12),
    ("红", 8),
    ("云", 10),
];

const FEMALE_CHARS: &[(&str, u32)] = &[
    ("芳", 45),
    ("娜", 40),
    ("敏", 38),
    ("静", 40),
    ("丽", 38),
    ("艳", 32),
    ("娟", 30),
    ("霞", 30),
    ("燕", 30),
    ("玲", 28),
    ("婷", 30),
    ("雪", 25),
    ("慧", 28),
    ("莉", 22),
    ("丹", 22),
    ("萍", 22),
    ("红", 25),
    ("琳", 20),
    ("洁", 20),
    ("颖", 20),
    ("倩", 18),
    ("欣", 22),
    ("怡", 18),
    ("佳", 22),
    ("梅", 20),
    ("秀", 20),
    ("英", 22),
    ("华", 20),
    ("云", 18),
    ("月", 15),
    ("晶", 15),
    ("璐", 12),
    ("蕾", 12),
    ("晓", 22),
    ("悦", 12),
    ("思", 15),
    ("雨", 15),
    ("琴", 15),
    ("凤", 15),
    ("兰", 18),
    ("美", 15),
    ("春", 12),
    ("玉", 18),
    ("彩", 10),
    ("瑶", 10),
    ("宁", 10),
    ("文", 12),
    ("秋", 10),
    ("嘉", 8),
];

pub struct NameGen {
    surnames: WeightedIndex<u32>,
    male: WeightedIndex<u32>,
    female: WeightedIndex<u32>,
}

impl Default for NameGen {
    fn default() -> Self {
        let w = |t: &[(&str, u32)]| WeightedIndex::new(t.iter().map(|(_, w)| *w)).expect("weights are positive");
        NameGen { surnames: w(SURNAMES), male: w(MALE_CHARS), female: w(FEMALE_CHARS) }
    }
}

impl NameGen {
    /// A full name; about four in five given names have two characters.
    pub fn name(&self, rng: &mut impl Rng, male: bool) -> String {
        let (table, dist) = if male { (MALE_CHARS, &self.male) } else { (FEMALE_CHARS, &self.female) };
        let mut s = SURNAMES[self.surnames.sample(rng)].0.to_string();
        let first = table[dist.sample(rng)].0;
        s.push_str(first);
        if rng.gen_bool(0.8) {
            // Avoid doubled characters such as 伟伟 except as the rare style they are.
            let mut second = table[dist.sample(rng)].0;
            if second == first && rng.gen_bool(0.85) {
                second = table[dist.sample(rng)].0;
            }
            s.push_str(second);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn names_are_two_or_three_characters_and_varied() {
        let g = NameGen::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let names: Vec<String> = (0..2000).map(|i| g.name(&mut rng, i % 2 == 0)).collect();
        assert!(names.iter().all(|n| (2..=3).contains(&n.chars().count())));
        let distinct: std::collections::HashSet<_> = names.iter().collect();
        assert!(distinct.len() > 1500, "{}", distinct.len());
        let wang = names.iter().filter(|n| n.starts_with('王')).count();
        assert!((80..220).contains(&wang), "王 should be about 7%: {wang}");
    }
}
